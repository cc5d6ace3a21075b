package process

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// initFile lists a node's init steps for its shim, with their programs
// resolved by the runtime.
const initFile = "init.json"

// initTimeout bounds all of a node's init steps together.
const initTimeout = time.Minute

// initStepSpec is one entry of init.json.
type initStepSpec struct {
	Name string   `json:"name"`
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
	Env  []string `json:"env,omitempty"`
}

func readInitSteps(dir string) ([]initStepSpec, error) {
	var steps []initStepSpec
	err := readJSON(filepath.Join(dir, initFile), &steps)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", initFile, err)
	}
	return steps, nil
}

// runInitSteps runs steps one after another in the node's home directory,
// their output in the node's log. It fails at the first step that fails, at
// a stop signal (which the step, in the shim's process group, got too) or
// when initTimeout has passed.
func runInitSteps(dir string, steps []initStepSpec, logs io.Writer, sigs <-chan os.Signal) error {
	deadline := time.NewTimer(initTimeout)
	defer deadline.Stop()
	for _, step := range steps {
		fmt.Fprintf(logs, "chaindock: init step %s: %s\n", step.Name, step.Path)
		cmd := exec.Command(step.Path, step.Args...)
		cmd.Dir = filepath.Join(dir, "home")
		cmd.Env = append(os.Environ(), step.Env...)
		cmd.Stdout, cmd.Stderr = logs, logs
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("init step %s: %w", step.Name, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("init step %s %s (see the node's log)", step.Name, describeExit(err))
			}
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
			<-done
			return fmt.Errorf("stopped by %s in init step %s, before the node started", s, step.Name)
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("init steps did not finish within %s (step %s)", initTimeout, step.Name)
		}
	}
	return nil
}

package process

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// ShimCommand is the subcommand of the chaindock binary that runs ShimMain.
const ShimCommand = "node-shim"

type shimState struct {
	ShimPID   int       `json:"shimPID"`
	ShimStart uint64    `json:"shimStart"`
	PID       int       `json:"pid"`
	PIDStart  uint64    `json:"pidStart"`
	StartedAt time.Time `json:"startedAt"`
	// Sidecars are the node's helper processes.
	Sidecars []pidRecord `json:"sidecars,omitempty"`
}

type pidRecord struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

type exitState struct {
	Code     int       `json:"code"`
	Signal   string    `json:"signal,omitempty"`
	ExitedAt time.Time `json:"exitedAt"`
	Error    string    `json:"error,omitempty"`
}

// ShimMain supervises one node process: it starts the program given after
// "--" in the node's home directory, copies its output into rotated log
// files, records both PIDs in state.json and the exit in exit.json, and
// passes SIGTERM and SIGINT on to the node. It returns the exit code.
func ShimMain(args []string) int {
	fs := flag.NewFlagSet(ShimCommand, flag.ContinueOnError)
	dir := fs.String("dir", "", "node directory")
	maxMB := fs.Int("log-max-mb", 50, "rotate node.log at this size")
	keep := fs.Int("log-keep", 5, "rotated log files to keep")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if *dir == "" || len(rest) == 0 {
		fmt.Fprintln(os.Stderr, "usage: node-shim --dir DIR -- PROGRAM [ARGS...]")
		return 2
	}
	// The lock is held for the shim's life; the runtime checks it so that a
	// node whose shim has not yet written state.json is not started twice.
	lock, err := lockShim(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer lock.Close()
	logs := &lumberjack.Logger{
		Filename:   filepath.Join(*dir, "logs", "node.log"),
		MaxSize:    *maxMB,
		MaxBackups: *keep,
	}
	defer logs.Close()

	st := shimState{ShimPID: os.Getpid(), StartedAt: time.Now().UTC()}
	st.ShimStart, _ = processStartTime(st.ShimPID)
	fail := func(code int, msg string) int {
		writeExit(*dir, exitState{Code: code, ExitedAt: time.Now().UTC(), Error: msg})
		fmt.Fprintf(logs, "chaindock: %s\n", msg)
		return code
	}

	var stopping atomic.Bool
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	// Init steps first, then sidecars: the node may need them from its
	// first instant.
	steps, err := readInitSteps(*dir)
	if err != nil {
		return fail(2, err.Error())
	}
	specs, err := readSidecars(*dir)
	if err != nil {
		return fail(2, err.Error())
	}
	if len(steps) > 0 {
		// Recorded before the steps run, so that a stop in the meantime
		// finds the shim and, in its process group, the running step.
		if err := writeJSON(filepath.Join(*dir, "state.json"), st); err != nil {
			fmt.Fprintf(logs, "chaindock: record state: %v\n", err)
		}
		if err := runInitSteps(*dir, steps, logs, sigs); err != nil {
			return fail(1, err.Error())
		}
	}
	sidecars := make([]*sidecar, 0, len(specs))
	defer func() { stopSidecars(sidecars) }()
	exited := make(chan *sidecar, len(specs))
	for _, spec := range specs {
		sc, err := startSidecar(*dir, spec, *maxMB, *keep, exited)
		if err != nil {
			return fail(127, err.Error())
		}
		sidecars = append(sidecars, sc)
		st.Sidecars = append(st.Sidecars, sc.record)
	}
	if len(sidecars) > 0 {
		// Recorded before the wait for readiness, so that a stop in the
		// meantime finds them.
		if err := writeJSON(filepath.Join(*dir, "state.json"), st); err != nil {
			fmt.Fprintf(logs, "chaindock: record state: %v\n", err)
		}
	}
	for _, sc := range sidecars {
		if err := sc.waitReady(sigs, exited); err != nil {
			return fail(1, err.Error())
		}
	}

	cmd := exec.Command(rest[0], rest[1:]...)
	cmd.Dir = filepath.Join(*dir, "home")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fail(127, fmt.Sprintf("start %s: %v", rest[0], err))
	}
	st.PID = cmd.Process.Pid
	st.PIDStart, _ = processStartTime(st.PID)
	if err := writeJSON(filepath.Join(*dir, "state.json"), st); err != nil {
		fmt.Fprintf(logs, "chaindock: record state: %v\n", err)
	}
	go func() {
		for s := range sigs {
			stopping.Store(true)
			_ = cmd.Process.Signal(s)
		}
	}()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var sidecarGone string
	select {
	case err = <-done:
	case sc := <-exited:
		if !stopping.Load() {
			sidecarGone = fmt.Sprintf("sidecar %s %s; the node was stopped with it", sc.name, sc.exit)
			fmt.Fprintf(logs, "chaindock: %s\n", sidecarGone)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		// A node whose application died mid-block may never finish
		// stopping (CometBFT can hang in its shutdown): it is killed after
		// a grace period, so that it is reported exited and restarted.
		select {
		case err = <-done:
		case <-time.After(sidecarStopGrace):
			fmt.Fprintf(logs, "chaindock: the node did not stop %s after SIGTERM; killing it\n", sidecarStopGrace)
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	ex := exitState{ExitedAt: time.Now().UTC(), Error: sidecarGone}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ex.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ex.Signal = ws.Signal().String()
			ex.Code = 128 + int(ws.Signal())
		}
	default:
		ex.Code = 1
		ex.Error = err.Error()
	}
	if sidecarGone != "" && ex.Code == 0 {
		ex.Code = 1
	}
	writeExit(*dir, ex)
	return ex.Code
}

// sidecarStopGrace is how long a node has to stop after its sidecar died.
const sidecarStopGrace = 10 * time.Second

const shimLock = "shim.lock"

func lockShim(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, shimLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another node shim runs in %s", dir)
	}
	return f, nil
}

// shimRunning reports whether a shim holds the lock of dir.
func shimRunning(dir string) bool {
	f, err := lockShim(dir)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	f.Close()
	return false
}

func writeExit(dir string, ex exitState) {
	if err := writeJSON(filepath.Join(dir, "exit.json"), ex); err != nil {
		fmt.Fprintf(os.Stderr, "record exit: %v\n", err)
	}
}

// writeJSON replaces path atomically, so a reader never sees half a file.
// Nothing here is synced to disk: node files are rebuilt from the stored
// plan on every start, and the PIDs in state.json mean nothing after a
// power loss.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

var _ io.Writer = (*lumberjack.Logger)(nil)

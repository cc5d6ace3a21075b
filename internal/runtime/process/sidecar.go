package process

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// sidecarsFile lists a node's sidecars for its shim, with their programs
// resolved by the runtime.
const sidecarsFile = "sidecars.json"

// sidecarReadyTimeout bounds the wait for a sidecar to accept connections.
const sidecarReadyTimeout = 30 * time.Second

// sidecarSpec is one entry of sidecars.json.
type sidecarSpec struct {
	Name         string   `json:"name"`
	Path         string   `json:"path"`
	Args         []string `json:"args,omitempty"`
	Env          []string `json:"env,omitempty"`
	ReadyAddress string   `json:"readyAddress,omitempty"`
}

func readSidecars(dir string) ([]sidecarSpec, error) {
	var specs []sidecarSpec
	err := readJSON(filepath.Join(dir, sidecarsFile), &specs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sidecarsFile, err)
	}
	return specs, nil
}

func sidecarEnv(extra map[string]string) []string {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// sidecar is a running sidecar of the shim.
type sidecar struct {
	name   string
	ready  string
	cmd    *exec.Cmd
	logs   *lumberjack.Logger
	record pidRecord
	done   chan struct{}
	exit   string // how it ended, set before done closes
}

func startSidecar(dir string, spec sidecarSpec, maxMB, keep int, exited chan<- *sidecar) (*sidecar, error) {
	logs := &lumberjack.Logger{
		Filename:   filepath.Join(dir, "logs", spec.Name+".log"),
		MaxSize:    maxMB,
		MaxBackups: keep,
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = filepath.Join(dir, "home")
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, fmt.Errorf("start sidecar %s: %w", spec.Name, err)
	}
	sc := &sidecar{name: spec.Name, ready: spec.ReadyAddress, cmd: cmd, logs: logs, done: make(chan struct{})}
	sc.record = pidRecord{Name: spec.Name, PID: cmd.Process.Pid}
	sc.record.Start, _ = processStartTime(sc.record.PID)
	go func() {
		err := cmd.Wait()
		sc.exit = describeExit(err)
		logs.Close()
		close(sc.done)
		exited <- sc
	}()
	return sc, nil
}

func describeExit(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exited with code 0"
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by signal: " + ws.Signal().String()
		}
		return fmt.Sprintf("exited with code %d", ee.ExitCode())
	default:
		return "failed: " + err.Error()
	}
}

// waitReady waits until the sidecar accepts connections on its ready
// address, or fails when a sidecar exits, a stop signal comes, or the
// time is up.
func (sc *sidecar) waitReady(sigs <-chan os.Signal, exited <-chan *sidecar) error {
	if sc.ready == "" {
		return nil
	}
	deadline := time.Now().Add(sidecarReadyTimeout)
	for {
		conn, err := net.DialTimeout("tcp", sc.ready, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sidecar %s accepted no connection on %s within %s: %w", sc.name, sc.ready, sidecarReadyTimeout, err)
		}
		select {
		case gone := <-exited:
			return fmt.Errorf("sidecar %s %s before the node started (see logs/%s.log)", gone.name, gone.exit, gone.name)
		case s := <-sigs:
			return fmt.Errorf("stopped by %s before the node started", s)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopSidecars ends every sidecar still running: SIGTERM, then SIGKILL
// after a grace period.
func stopSidecars(scs []*sidecar) {
	for _, sc := range scs {
		select {
		case <-sc.done:
		default:
			_ = sc.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	grace := time.NewTimer(5 * time.Second)
	defer grace.Stop()
	expired := false
	for _, sc := range scs {
		if !expired {
			select {
			case <-sc.done:
				continue
			case <-grace.C:
				expired = true
			}
		}
		_ = sc.cmd.Process.Kill()
		<-sc.done
	}
}

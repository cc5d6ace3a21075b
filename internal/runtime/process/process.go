package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chaindock/chaindock/internal/runtime"
)

// Name is the runtime's registered name.
const Name = "process"

func init() {
	runtime.Register(Name, func(cfg runtime.Config) (runtime.Runtime, error) { return New(cfg) })
}

// Runtime runs nodes as local processes.
type Runtime struct {
	dir     string
	binDirs []string
	// shim is the command that starts a node shim: the chaindock binary
	// and its node-shim subcommand.
	shim []string
	// StopGrace is how long a node has to exit after SIGTERM.
	StopGrace time.Duration
	// LogMaxMB and LogKeep rotate node logs.
	LogMaxMB, LogKeep int

	onExit atomic.Pointer[func(string)]
}

var (
	_ runtime.Runtime      = (*Runtime)(nil)
	_ runtime.LogReader    = (*Runtime)(nil)
	_ runtime.ExitNotifier = (*Runtime)(nil)
)

// OnExit implements runtime.ExitNotifier for nodes this runtime started;
// adopted nodes are seen exited on the next Inspect.
func (r *Runtime) OnExit(f func(id string)) { r.onExit.Store(&f) }

// New makes a process runtime keeping its nodes under cfg.DataDir.
func New(cfg runtime.Config) (*Runtime, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("process runtime: no data directory")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	shim, err := findShim(cfg.BinDirs)
	if err != nil {
		return nil, err
	}
	return &Runtime{
		dir:       cfg.DataDir,
		binDirs:   cfg.BinDirs,
		shim:      shim,
		StopGrace: 10 * time.Second,
		LogMaxMB:  50,
		LogKeep:   5,
	}, nil
}

// shimWait bounds how long Start waits for a node's previous shim.
const shimWait = 5 * time.Second

// ShimBinary is the standalone node shim, preferred when it is installed.
const ShimBinary = "chaindock-node-shim"

// findShim prefers the small standalone shim in the bin directories and
// falls back to this executable's node-shim subcommand.
func findShim(binDirs []string) ([]string, error) {
	for _, d := range binDirs {
		p := filepath.Join(d, ShimBinary)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return []string{p}, nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("process runtime: find own executable for the node shim: %w", err)
	}
	return []string{exe, ShimCommand}, nil
}

type instance struct {
	Spec     runtime.NodeSpec `json:"spec"`
	SpecHash string           `json:"specHash"`
	Program  string           `json:"program"`
}

func (r *Runtime) nodeDir(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return "", fmt.Errorf("invalid node id %q", id)
	}
	return filepath.Join(r.dir, id), nil
}

// SpecHash identifies a node spec; a change restarts the node.
func SpecHash(spec runtime.NodeSpec) string {
	b, _ := json.Marshal(spec) // a NodeSpec always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Start implements runtime.Runtime.
func (r *Runtime) Start(ctx context.Context, spec runtime.NodeSpec) (runtime.Status, error) {
	dir, err := r.nodeDir(spec.ID)
	if err != nil {
		return runtime.Status{}, err
	}
	hash := SpecHash(spec)
	st, err := r.Inspect(ctx, spec.ID)
	switch {
	case err == nil && st.State == runtime.StateRunning && st.SpecHash == hash:
		return st, nil
	case err == nil && st.State == runtime.StateRunning:
		if err := r.Stop(ctx, spec.ID); err != nil {
			return runtime.Status{}, err
		}
	case err != nil && !errors.Is(err, runtime.ErrNotFound):
		return runtime.Status{}, err
	}

	// A shim still holds the node's lock: one exiting after its node died,
	// or one whose server died before the shim recorded its node. Wait,
	// boundedly, for it to finish or to record a running node, so that a
	// second node is never started beside the first.
	deadline := time.Now().Add(shimWait)
	for shimRunning(dir) {
		if st, err := r.Inspect(ctx, spec.ID); err == nil && st.State == runtime.StateRunning && st.SpecHash == hash {
			return st, nil
		}
		if time.Now().After(deadline) {
			return runtime.Status{}, fmt.Errorf("start %s: its node shim still runs after %s; try again", spec.ID, shimWait)
		}
		select {
		case <-ctx.Done():
			return runtime.Status{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	program, err := r.lookPath(spec.Program)
	if err != nil {
		return runtime.Status{}, err
	}
	sidecars := make([]sidecarSpec, 0, len(spec.Sidecars))
	for i, sc := range spec.Sidecars {
		if !validSidecarName(sc.Name) || slices.ContainsFunc(spec.Sidecars[:i], func(o runtime.Sidecar) bool { return o.Name == sc.Name }) {
			return runtime.Status{}, fmt.Errorf("start %s: sidecar name %q must be unique, of lower-case letters, digits and '-', and not node or shim", spec.ID, sc.Name)
		}
		path, err := r.lookPath(sc.Program)
		if err != nil {
			return runtime.Status{}, fmt.Errorf("sidecar %s: %w", sc.Name, err)
		}
		sidecars = append(sidecars, sidecarSpec{Name: sc.Name, Path: path, Args: sc.Args, Env: sidecarEnv(sc.Env), ReadyAddress: sc.ReadyAddress})
	}
	steps := make([]initStepSpec, 0, len(spec.Init))
	for i, step := range spec.Init {
		if !validSidecarName(step.Name) || slices.ContainsFunc(spec.Init[:i], func(o runtime.InitStep) bool { return o.Name == step.Name }) {
			return runtime.Status{}, fmt.Errorf("start %s: init step name %q must be unique, of lower-case letters, digits and '-', and not node or shim", spec.ID, step.Name)
		}
		path, err := r.lookPath(step.Program)
		if err != nil {
			return runtime.Status{}, fmt.Errorf("init step %s: %w", step.Name, err)
		}
		steps = append(steps, initStepSpec{Name: step.Name, Path: path, Args: step.Args, Env: sidecarEnv(step.Env)})
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
		}
	}
	if err := writeFiles(home, spec.Files); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := writeJSON(filepath.Join(dir, "instance.json"), instance{Spec: spec, SpecHash: hash, Program: program}); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := writeJSON(filepath.Join(dir, sidecarsFile), sidecars); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := writeJSON(filepath.Join(dir, initFile), steps); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	for _, f := range []string{"state.json", "exit.json"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
		}
	}

	args := append([]string{}, r.shim[1:]...)
	args = append(args, "--dir", dir, fmt.Sprintf("--log-max-mb=%d", r.LogMaxMB), fmt.Sprintf("--log-keep=%d", r.LogKeep), "--", program)
	args = append(args, spec.Args...)
	// Not CommandContext: the node must outlive the request and the server.
	cmd := exec.Command(r.shim[0], args...) //nolint:gosec // the program is resolved from the runtime's own bin dirs
	cmd.Dir = home
	cmd.Env = nodeEnv(spec.Env)
	shimLog, err := os.OpenFile(filepath.Join(dir, "logs", "shim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	defer shimLog.Close()
	cmd.Stdout, cmd.Stderr = shimLog, shimLog
	// Its own session: no signal to the server's terminal or process group
	// reaches the node, and the node survives the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: node shim: %w", spec.ID, err)
	}
	// Reap the shim if it exits while this server runs; a later server
	// finds it reparented.
	go func() {
		_ = cmd.Wait()
		if f := r.onExit.Load(); f != nil {
			(*f)(spec.ID)
		}
	}()

	// The shim records the node's PID before anything else, after its
	// init steps ran and its sidecars are ready; wait for it.
	wait := 10 * time.Second
	if len(sidecars) > 0 {
		wait += sidecarReadyTimeout
	}
	if len(steps) > 0 {
		wait += initTimeout
	}
	deadline = time.Now().Add(wait)
	for {
		st, err := r.Inspect(ctx, spec.ID)
		if err == nil && (st.State == runtime.StateRunning || st.ExitedAt.After(time.Time{})) {
			return st, nil
		}
		if time.Now().After(deadline) {
			_ = r.Stop(ctx, spec.ID)
			return runtime.Status{}, fmt.Errorf("start %s: the node shim recorded no state within %s (see %s)", spec.ID, wait, shimLog.Name())
		}
		select {
		case <-ctx.Done():
			return runtime.Status{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *Runtime) lookPath(program string) (string, error) {
	if program == "" {
		return "", errors.New("node spec has no program")
	}
	if filepath.IsAbs(program) {
		return program, nil
	}
	for _, d := range r.binDirs {
		p := filepath.Join(d, program)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(program)
	if err != nil {
		return "", fmt.Errorf("program %q is not in %v or PATH: %w", program, r.binDirs, err)
	}
	return filepath.Abs(p)
}

func nodeEnv(extra map[string]string) []string {
	env := os.Environ()
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

func writeFiles(home string, files []runtime.File) error {
	for _, f := range files {
		clean := filepath.Clean(f.Path)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("file %q is outside the node directory", f.Path)
		}
		p := filepath.Join(home, clean)
		if f.KeepExisting {
			if _, err := os.Stat(p); err == nil {
				continue
			}
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o600
		}
		if err := writeFileAtomic(p, f.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	return nil
}

// Inspect implements runtime.Runtime.
func (r *Runtime) Inspect(_ context.Context, id string) (runtime.Status, error) {
	dir, err := r.nodeDir(id)
	if err != nil {
		return runtime.Status{}, err
	}
	var inst instance
	if err := readJSON(filepath.Join(dir, "instance.json"), &inst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return runtime.Status{}, fmt.Errorf("%s: %w", id, runtime.ErrNotFound)
		}
		return runtime.Status{}, fmt.Errorf("inspect %s: %w", id, err)
	}
	st := runtime.Status{ID: id, Labels: inst.Spec.Labels, SpecHash: inst.SpecHash, State: runtime.StateExited}
	var ss shimState
	if err := readJSON(filepath.Join(dir, "state.json"), &ss); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return runtime.Status{}, fmt.Errorf("inspect %s: %w", id, err)
		}
		st.Message = "not started"
		return st, nil
	}
	st.PID, st.StartedAt = ss.PID, ss.StartedAt
	if alive(ss.PID, ss.PIDStart) {
		st.State = runtime.StateRunning
		return st, nil
	}
	var ex exitState
	switch err := readJSON(filepath.Join(dir, "exit.json"), &ex); {
	case err == nil:
		st.ExitCode, st.ExitedAt = ex.Code, ex.ExitedAt
		switch {
		case ex.Error != "":
			st.Message = ex.Error
		case ex.Signal != "":
			st.Message = "killed by signal: " + ex.Signal
		default:
			st.Message = fmt.Sprintf("exited with code %d", ex.Code)
		}
	case errors.Is(err, fs.ErrNotExist):
		st.Message = "process gone without an exit record"
	default:
		return runtime.Status{}, fmt.Errorf("inspect %s: %w", id, err)
	}
	return st, nil
}

// Stop implements runtime.Runtime: SIGTERM to the node's process group, and
// SIGKILL to whatever is left after the grace period.
func (r *Runtime) Stop(ctx context.Context, id string) error {
	dir, err := r.nodeDir(id)
	if err != nil {
		return err
	}
	var ss shimState
	if err := readJSON(filepath.Join(dir, "state.json"), &ss); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("stop %s: %w", id, err)
	}
	pids := livePIDs(ss)
	if len(pids) == 0 {
		return nil
	}
	signalAll(ss, syscall.SIGTERM)
	deadline := time.Now().Add(r.StopGrace)
	for len(livePIDs(ss)) > 0 {
		if time.Now().After(deadline) {
			signalAll(ss, syscall.SIGKILL)
			break
		}
		select {
		case <-ctx.Done():
			signalAll(ss, syscall.SIGKILL)
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// SIGKILL cannot be refused; wait for the kernel to finish it off.
	for i := 0; i < 100 && len(livePIDs(ss)) > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if left := livePIDs(ss); len(left) > 0 {
		return fmt.Errorf("stop %s: processes %v still alive after SIGKILL", id, left)
	}
	return nil
}

func livePIDs(ss shimState) []int {
	var out []int
	if alive(ss.ShimPID, ss.ShimStart) {
		out = append(out, ss.ShimPID)
	}
	if alive(ss.PID, ss.PIDStart) {
		out = append(out, ss.PID)
	}
	for _, sc := range ss.Sidecars {
		if alive(sc.PID, sc.Start) {
			out = append(out, sc.PID)
		}
	}
	return out
}

// signalAll signals the node's process group (the shim leads it, so it holds
// anything the node forked) and both recorded processes, each only while it
// is provably the process that was recorded.
func signalAll(ss shimState, sig syscall.Signal) {
	if alive(ss.ShimPID, ss.ShimStart) {
		_ = syscall.Kill(-ss.ShimPID, sig)
	} else if st, err := readProcStat(ss.PID); err == nil && st.StartTime == ss.PIDStart && st.PGID == ss.ShimPID {
		_ = syscall.Kill(-ss.ShimPID, sig)
	}
	if alive(ss.PID, ss.PIDStart) {
		_ = syscall.Kill(ss.PID, sig)
	}
	for _, sc := range ss.Sidecars {
		if alive(sc.PID, sc.Start) {
			_ = syscall.Kill(sc.PID, sig)
		}
	}
}

// Remove implements runtime.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	dir, err := r.nodeDir(id)
	if err != nil {
		return err
	}
	if err := r.Stop(ctx, id); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// List implements runtime.Runtime.
func (r *Runtime) List(ctx context.Context) ([]runtime.Status, error) {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []runtime.Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := r.Inspect(ctx, e.Name())
		if errors.Is(err, runtime.ErrNotFound) {
			// A directory without instance.json is a start that died
			// before it was recorded; report it so it can be removed.
			out = append(out, runtime.Status{ID: e.Name(), State: runtime.StateExited, Message: "incomplete node directory"})
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func validSidecarName(name string) bool {
	if name == "" || name == "node" || name == "shim" || len(name) > 63 {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

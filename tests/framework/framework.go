// Package framework starts real ChainDock servers (the built binary, as a
// separate process, so that kill -9 is real) for the end-to-end tests and the
// benchmarks, and finds what a network leaves behind.
package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/internal/server"
)

// BinDir returns the directory with the chaindock and cometbft binaries, or
// an error that says how to get them.
func BinDir() (string, error) {
	dir := os.Getenv("CHAINDOCK_BIN_DIR")
	if dir == "" {
		return "", errors.New("CHAINDOCK_BIN_DIR is not set: run the tests with `make test`, which builds bin/chaindock and installs bin/cometbft")
	}
	for _, b := range []string{"chaindock", "cometbft"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s has no %s binary: run `make build`", dir, b)
		}
	}
	return dir, nil
}

// Server is a chaindock server process.
type Server struct {
	DataDir string
	BinDir  string
	Args    []string
	Addr    string
	Client  *client.Client
	cmd     *exec.Cmd
	done    chan struct{}
	log     *os.File
}

// StartServer starts "chaindock server" on dataDir with a free API port and
// waits until it answers.
func StartServer(ctx context.Context, binDir, dataDir string, extraArgs ...string) (*Server, error) {
	return StartServerEnv(ctx, binDir, dataDir, nil, extraArgs...)
}

// StartServerEnv is StartServer with extra environment variables.
func StartServerEnv(ctx context.Context, binDir, dataDir string, env []string, extraArgs ...string) (*Server, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(dataDir, server.AddressFile))
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+"-server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{"server", "--data-dir", dataDir, "--listen", "127.0.0.1:0"}, extraArgs...)
	cmd := exec.Command(filepath.Join(binDir, "chaindock"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &Server{DataDir: dataDir, BinDir: binDir, Args: extraArgs, cmd: cmd, done: make(chan struct{}), log: logf}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			logf.Close()
			return nil, fmt.Errorf("server exited at start; see %s", logf.Name())
		default:
		}
		if b, err := os.ReadFile(filepath.Join(dataDir, server.AddressFile)); err == nil {
			tok, terr := os.ReadFile(filepath.Join(dataDir, server.TokenFile))
			if terr == nil {
				s.Addr = strings.TrimSpace(string(b))
				s.Client = client.New(s.Addr, strings.TrimSpace(string(tok)))
				if _, err := s.Client.ListNetworks(ctx); err == nil {
					return s, nil
				}
			}
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, fmt.Errorf("server did not answer within 30s; see %s", logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// LogPath is where the server's output goes.
func (s *Server) LogPath() string { return s.log.Name() }

// Kill kills the server with SIGKILL and waits for it to be gone.
func (s *Server) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.log.Close()
}

// Stop stops the server with SIGTERM.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.log.Close()
}

// ProcessesUnder lists live processes whose working directory or command
// line lies under dir: what a deleted network must not leave behind.
func ProcessesUnder(dir string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.HasPrefix(cwd, dir) || strings.Contains(string(cmdline), dir) {
			out = append(out, pid)
		}
	}
	return out
}

// KillAllUnder kills every process ProcessesUnder finds; tests call it in
// cleanup so that a failed test leaves nothing running.
func KillAllUnder(dir string) {
	for _, pid := range ProcessesUnder(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// PortListening reports whether something accepts connections on
// 127.0.0.1:port.
func PortListening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Alive reports whether pid is a live, non-zombie process.
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// Poll calls cond every interval until it returns true or the timeout
// passes; the error carries cond's last explanation.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/runtime"
)

// tailWindow bounds how much of a log is read to find the last lines.
const tailWindow = 4 << 20

// Logs implements runtime.LogReader. With Follow it keeps streaming,
// across rotations, until ctx ends.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, w io.Writer) error {
	dir, err := r.nodeDir(id)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "instance.json")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", id, runtime.ErrNotFound)
	}
	name := "node"
	if opts.Sidecar != "" {
		if opts.Sidecar == name || strings.ContainsAny(opts.Sidecar, `/\.`) {
			return fmt.Errorf("logs %s: no sidecar %q", id, opts.Sidecar)
		}
		name = opts.Sidecar
	}
	path := filepath.Join(dir, "logs", name+".log")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && opts.Follow {
		f, err = waitOpen(ctx, path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil // started, no output yet
	}
	if err != nil {
		return fmt.Errorf("logs %s: %w", id, err)
	}
	defer func() { f.Close() }()
	if opts.Tail > 0 {
		if err := seekTail(f, opts.Tail); err != nil {
			return fmt.Errorf("logs %s: %w", id, err)
		}
	}
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !opts.Follow {
			return nil
		}
		if rotated(f, path) {
			// Drain what the node wrote before rotation, then switch.
			if _, err := io.Copy(w, f); err != nil {
				return err
			}
			nf, err := waitOpen(ctx, path)
			if err != nil {
				return err
			}
			f.Close()
			f = nf
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func rotated(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	return !os.SameFile(a, b)
}

func waitOpen(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, fs.ErrNotExist
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	start := max(fi.Size()-tailWindow, 0)
	buf := make([]byte, fi.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	body := bytes.TrimSuffix(buf, []byte("\n"))
	off := len(body)
	for range n {
		i := bytes.LastIndexByte(body[:off], '\n')
		if i < 0 {
			off = 0
			break
		}
		off = i
	}
	if off > 0 {
		off++ // past the newline
	}
	_, err = f.Seek(start+int64(off), io.SeekStart)
	return err
}

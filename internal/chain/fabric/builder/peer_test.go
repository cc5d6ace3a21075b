package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPeerRunsScripts builds the chaindock binary, installs the scripts
// Files returns as a peer's external builder, and runs them as the peer
// does on a real ccaas package: detect, build and release in a scratch
// directory, with the peer's pruned environment.
func TestPeerRunsScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the chaindock binary")
	}
	tmp := t.TempDir()
	chaindock := filepath.Join(tmp, "chaindock")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", chaindock, "./cmd/chaindock")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	builderDir := filepath.Join(tmp, "builders", Name)
	for _, f := range Files(chaindock) {
		p := filepath.Join(builderDir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ccaas package", func(t *testing.T) {
		pkg := ccaasPackage(t, `{"type":"ccaas","label":"notary_1.0"}`, map[string]string{
			"connection.json": goodConnection,
			"META-INF/statedb/couchdb/indexes/owner.json": goodIndex,
		})
		ctx := installContext(t, pkg)
		runStep(t, builderDir, "detect", 0, ctx.src, ctx.md)
		runStep(t, builderDir, "build", 0, ctx.src, ctx.md, ctx.bld)
		runStep(t, builderDir, "release", 0, ctx.bld, ctx.rel)
		got := tree(t, ctx.rel)
		if got["chaincode/server/connection.json"] != goodConnection {
			t.Errorf("release holds %v, want chaincode/server/connection.json = %s", got, goodConnection)
		}
		if got["statedb/couchdb/indexes/owner.json"] != goodIndex {
			t.Errorf("release holds %v, want statedb/couchdb/indexes/owner.json", got)
		}
	})

	t.Run("golang package", func(t *testing.T) {
		pkg := ccaasPackage(t, `{"type":"golang","label":"cc_1","path":"example.com/cc"}`, map[string]string{"src/main.go": "package main\n"})
		ctx := installContext(t, pkg)
		stderr := runStep(t, builderDir, "detect", 1, ctx.src, ctx.md)
		if !strings.Contains(stderr, `type is "golang"`) {
			t.Errorf("detect said %q, want the type", stderr)
		}
	})

	t.Run("bad connection.json", func(t *testing.T) {
		pkg := ccaasPackage(t, `{"type":"ccaas","label":"cc_1"}`, map[string]string{"connection.json": `{"address":"cc1:99999","tls_required":true}`})
		ctx := installContext(t, pkg)
		runStep(t, builderDir, "detect", 0, ctx.src, ctx.md)
		stderr := runStep(t, builderDir, "build", 1, ctx.src, ctx.md, ctx.bld)
		for _, w := range []string{"address: ", "root_cert: "} {
			if !strings.Contains(stderr, w) {
				t.Errorf("build said %q, want it to name %q", stderr, w)
			}
		}
		wantEmpty(t, ctx.bld)
	})
}

// runStep runs bin/step as the peer does, with only PATH from the
// environment, and returns its stderr after checking its exit code.
func runStep(t *testing.T, builderDir, step string, wantCode int, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(builderDir, "bin", step), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if code != wantCode {
		t.Errorf("%s exited %d, want %d\nstdout: %s\nstderr: %s", step, code, wantCode, &stdout, &stderr)
	}
	return stderr.String()
}

type peerContext struct{ src, md, bld, rel string }

// installContext unpacks a chaincode package the way a peer does before it
// runs external builders: code.tar.gz into src, metadata.json into md, and
// empty bld and release directories.
func installContext(t *testing.T, pkg []byte) peerContext {
	t.Helper()
	scratch := t.TempDir()
	ctx := peerContext{
		src: filepath.Join(scratch, "src"),
		md:  filepath.Join(scratch, "metadata"),
		bld: filepath.Join(scratch, "bld"),
		rel: filepath.Join(scratch, "release"),
	}
	for _, d := range []string{ctx.src, ctx.md, ctx.bld, ctx.rel} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	outer := untar(t, pkg)
	writeTree(t, ctx.md, map[string]string{"metadata.json": outer["metadata.json"]})
	writeTree(t, ctx.src, untar(t, []byte(outer["code.tar.gz"])))
	return ctx
}

// ccaasPackage makes a chaincode package as `peer lifecycle chaincode
// package` lays it out: metadata.json and code.tar.gz in a tar.gz.
func ccaasPackage(t *testing.T, metadata string, code map[string]string) []byte {
	t.Helper()
	return targz(t, map[string]string{"metadata.json": metadata, "code.tar.gz": string(targz(t, code))})
}

func targz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func untar(t *testing.T, data []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = string(b)
	}
}

// moduleRoot is the directory of the go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

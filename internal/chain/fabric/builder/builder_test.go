package builder

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	goodConnection = `{"address": "cc1.org1:9999", "dial_timeout": "10s", "tls_required": false}`
	goodIndex      = `{"index": {"fields": ["owner"]}, "ddoc": "indexOwnerDoc", "name": "indexOwner", "type": "json"}`
)

// writeTree writes files (slash paths relative to dir) and returns dir.
func writeTree(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tree returns the regular files under dir by slash path, with contents.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantEmpty(t *testing.T, dir string) {
	t.Helper()
	if got := tree(t, dir); len(got) != 0 {
		t.Errorf("%s holds %v after a refused step, want nothing", dir, slices.Sorted(maps.Keys(got)))
	}
}

func metadataDir(t *testing.T, metadata string) string {
	t.Helper()
	return writeTree(t, t.TempDir(), map[string]string{"metadata.json": metadata})
}

func TestDetect(t *testing.T) {
	src := t.TempDir()
	tests := []struct {
		name     string
		metadata string // "" for no metadata.json
		ours     bool
		notCCaaS bool
	}{
		{"ccaas", `{"type":"ccaas","label":"notary_1.0"}`, true, false},
		{"upper case, as the peer CLI writes types", `{"type":"CCAAS","label":"x","path":""}`, true, false},
		{"golang", `{"type":"golang","label":"x","path":"github.com/x/cc"}`, false, true},
		{"external", `{"type":"external","label":"x"}`, false, true},
		{"no type", `{"label":"x"}`, false, true},
		{"malformed", `{"type":`, false, false},
		{"no metadata.json", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := t.TempDir()
			if tt.metadata != "" {
				md = metadataDir(t, tt.metadata)
			}
			err := Detect(src, md)
			if (err == nil) != tt.ours {
				t.Fatalf("Detect: %v, want ours=%v", err, tt.ours)
			}
			if errors.Is(err, ErrNotCCaaS) != tt.notCCaaS {
				t.Errorf("Detect: %v, want ErrNotCCaaS=%v", err, tt.notCCaaS)
			}
			var stderr bytes.Buffer
			code := Main([]string{"detect", src, md}, &stderr)
			want := ExitOK
			if !tt.ours {
				want = ExitFailed
			}
			if code != want {
				t.Errorf("exit %d, want %d (stderr %q)", code, want, stderr.String())
			}
			if !tt.ours && !strings.Contains(stderr.String(), "detect:") {
				t.Errorf("stderr %q does not say why", stderr.String())
			}
		})
	}
}

func TestBuildAndRelease(t *testing.T) {
	p := newTestPKI(t)
	mtls := string(mustJSON(t, obj{"address": "cc:7052", "tls_required": true, "client_auth_required": true,
		"root_cert": p.caCert, "client_cert": p.clientCert, "client_key": p.clientKey}))
	tests := []struct {
		name        string
		src         map[string]string
		wantBuild   map[string]string
		wantRelease map[string]string
	}{
		{
			name: "connection only",
			src:  map[string]string{"connection.json": goodConnection},
			wantBuild: map[string]string{
				"connection.json": goodConnection,
			},
			wantRelease: map[string]string{
				"chaincode/":                       "",
				"chaincode/server/":                "",
				"chaincode/server/connection.json": goodConnection,
			},
		},
		{
			name: "mutual tls and indexes",
			src: map[string]string{
				"connection.json": mtls,
				"META-INF/statedb/couchdb/indexes/owner.json":                      goodIndex,
				"META-INF/statedb/couchdb/collections/private/indexes/colour.json": goodIndex,
			},
			wantBuild: map[string]string{
				"connection.json":                                                  mtls,
				"META-INF/":                                                        "",
				"META-INF/statedb/":                                                "",
				"META-INF/statedb/couchdb/":                                        "",
				"META-INF/statedb/couchdb/indexes/":                                "",
				"META-INF/statedb/couchdb/indexes/owner.json":                      goodIndex,
				"META-INF/statedb/couchdb/collections/":                            "",
				"META-INF/statedb/couchdb/collections/private/":                    "",
				"META-INF/statedb/couchdb/collections/private/indexes/":            "",
				"META-INF/statedb/couchdb/collections/private/indexes/colour.json": goodIndex,
			},
			wantRelease: map[string]string{
				"chaincode/":                                              "",
				"chaincode/server/":                                       "",
				"chaincode/server/connection.json":                        mtls,
				"statedb/":                                                "",
				"statedb/couchdb/":                                        "",
				"statedb/couchdb/indexes/":                                "",
				"statedb/couchdb/indexes/owner.json":                      goodIndex,
				"statedb/couchdb/collections/":                            "",
				"statedb/couchdb/collections/private/":                    "",
				"statedb/couchdb/collections/private/indexes/":            "",
				"statedb/couchdb/collections/private/indexes/colour.json": goodIndex,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeTree(t, t.TempDir(), tt.src)
			md := metadataDir(t, `{"type":"ccaas","label":"notary_1.0"}`)
			bld, rel := t.TempDir(), t.TempDir()
			if err := Build(src, md, bld); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, bld); !mapsEqual(got, tt.wantBuild) {
				t.Errorf("build output %v\nwant %v", got, tt.wantBuild)
			}
			if err := Release(bld, rel); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, rel); !mapsEqual(got, tt.wantRelease) {
				t.Errorf("release output %v\nwant %v", got, tt.wantRelease)
			}
			fi, err := os.Stat(filepath.Join(rel, "chaincode", "server", "connection.json"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("released connection.json has mode %v; it may hold a key, want no group or other access", fi.Mode().Perm())
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool { return maps.Equal(a, b) }

func TestBuildRefuses(t *testing.T) {
	ccaas := `{"type":"ccaas","label":"notary_1.0"}`
	tests := []struct {
		name     string
		metadata string
		src      map[string]string
		prepare  func(t *testing.T, src, bld string)
		// want are parts of the error message, in Main's words.
		want []string
	}{
		{"not ccaas", `{"type":"golang","label":"x"}`, map[string]string{"connection.json": goodConnection}, nil,
			[]string{"not a chaincode-as-a-service package", `"golang"`}},
		{"no connection.json", ccaas, map[string]string{"src/main.go": "package main"}, nil,
			[]string{"no connection.json"}},
		{"bad connection.json", ccaas, map[string]string{"connection.json": `{"address":"cc","tls_required":"no"}`}, nil,
			[]string{"invalid connection.json:", "\n    address: ", "\n    tls_required: "}},
		{"connection.json is a directory", ccaas, map[string]string{"connection.json/x": "{}"}, nil,
			[]string{"not a regular file"}},
		{"connection.json is a symlink", ccaas, map[string]string{"elsewhere.json": goodConnection},
			func(t *testing.T, src, _ string) {
				t.Helper()
				if err := os.Symlink(filepath.Join(src, "elsewhere.json"), filepath.Join(src, "connection.json")); err != nil {
					t.Fatal(err)
				}
			}, []string{"not a regular file"}},
		{"index not json", ccaas, map[string]string{"connection.json": goodConnection, "META-INF/statedb/couchdb/indexes/a.json": "{"}, nil,
			[]string{"invalid META-INF:", "META-INF/statedb/couchdb/indexes/a.json: not a JSON index definition"}},
		{"index without fields", ccaas, map[string]string{"connection.json": goodConnection, "META-INF/statedb/couchdb/indexes/a.json": `{"index":{}}`}, nil,
			[]string{"META-INF/statedb/couchdb/indexes/a.json: index.fields: required"}},
		{"index without index", ccaas, map[string]string{"connection.json": goodConnection, "META-INF/statedb/couchdb/indexes/a.json": `{"name":"x"}`}, nil,
			[]string{"META-INF/statedb/couchdb/indexes/a.json: index: required"}},
		{"index not .json", ccaas, map[string]string{"connection.json": goodConnection, "META-INF/statedb/couchdb/indexes/a.txt": goodIndex}, nil,
			[]string{"META-INF/statedb/couchdb/indexes/a.txt: not a CouchDB index"}},
		{"file elsewhere in META-INF", ccaas, map[string]string{"connection.json": goodConnection, "META-INF/notes.md": "hi"}, nil,
			[]string{"META-INF/notes.md: not a CouchDB index"}},
		{"symlink in META-INF", ccaas, map[string]string{"connection.json": goodConnection, "target.json": goodIndex},
			func(t *testing.T, src, _ string) {
				t.Helper()
				dir := filepath.Join(src, "META-INF", "statedb", "couchdb", "indexes")
				if err := os.MkdirAll(dir, 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(src, "target.json"), filepath.Join(dir, "a.json")); err != nil {
					t.Fatal(err)
				}
			}, []string{"META-INF/statedb/couchdb/indexes/a.json: not a regular file"}},
		{"both files bad", ccaas, map[string]string{"connection.json": `{"address":9}`, "META-INF/x": "1"}, nil,
			[]string{"invalid connection.json:", "address: must be a string", "invalid META-INF:", "META-INF/x: not a CouchDB index"}},
		{"output already has connection.json", ccaas, map[string]string{"connection.json": goodConnection},
			func(t *testing.T, _, bld string) {
				t.Helper()
				writeTree(t, bld, map[string]string{"connection.json": "old"})
			},
			[]string{"already holds connection.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeTree(t, t.TempDir(), tt.src)
			md := metadataDir(t, tt.metadata)
			bld := t.TempDir()
			var before map[string]string
			if tt.prepare != nil {
				tt.prepare(t, src, bld)
			}
			before = tree(t, bld)
			if err := Build(src, md, bld); err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			var stderr bytes.Buffer
			if code := Main([]string{"build", src, md, bld}, &stderr); code != ExitFailed {
				t.Errorf("exit %d, want %d", code, ExitFailed)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not say %q", stderr.String(), w)
				}
			}
			if after := tree(t, bld); !mapsEqual(after, before) {
				t.Errorf("build output changed from %v to %v by a refused build", before, after)
			}
		})
	}
}

func TestBuildMissingOutputDir(t *testing.T) {
	src := writeTree(t, t.TempDir(), map[string]string{"connection.json": goodConnection})
	md := metadataDir(t, `{"type":"ccaas","label":"x"}`)
	bld := filepath.Join(t.TempDir(), "bld")
	if err := Build(src, md, bld); err == nil {
		t.Fatal("Build into a missing directory succeeded")
	}
	if _, err := os.Stat(bld); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Build created %s: %v", bld, err)
	}
}

// A failure after part of the output is in place takes that part away.
func TestBuildUndoesPartialOutput(t *testing.T) {
	src := writeTree(t, t.TempDir(), map[string]string{
		"connection.json": goodConnection,
		"META-INF/statedb/couchdb/indexes/owner.json": goodIndex,
	})
	md := metadataDir(t, `{"type":"ccaas","label":"x"}`)
	bld := t.TempDir()
	calls := 0
	rename = func(from, to string) error {
		calls++
		if calls == 2 {
			return errors.New("disk full")
		}
		return os.Rename(from, to)
	}
	t.Cleanup(func() { rename = os.Rename })
	err := Build(src, md, bld)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Build: %v, want the rename failure", err)
	}
	if calls != 2 {
		t.Errorf("%d renames, want 2", calls)
	}
	wantEmpty(t, bld)
}

func TestReleaseRefuses(t *testing.T) {
	tests := []struct {
		name string
		bld  map[string]string
		want string
	}{
		{"empty build output", nil, "no connection.json"},
		{"bad connection.json", map[string]string{"connection.json": `{"address":"cc:1","dial_timeout":5}`}, "dial_timeout: must be a duration string"},
		{"bad index", map[string]string{"connection.json": goodConnection, "META-INF/statedb/couchdb/indexes/a.json": "[]"}, "META-INF/statedb/couchdb/indexes/a.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bld := writeTree(t, t.TempDir(), tt.bld)
			rel := t.TempDir()
			var stderr bytes.Buffer
			if code := Main([]string{"release", bld, rel}, &stderr); code != ExitFailed {
				t.Errorf("exit %d, want %d", code, ExitFailed)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.want)
			}
			wantEmpty(t, rel)
		})
	}
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"run", "a", "b"},
		{"detect", "a"},
		{"build", "a", "b"},
		{"release", "a", "b", "c"},
	} {
		var stderr bytes.Buffer
		if code := Main(args, &stderr); code != ExitUsage {
			t.Errorf("Main(%q) = %d, want %d", args, code, ExitUsage)
		}
		if !strings.Contains(stderr.String(), "usage: chaindock fabric-builder detect") {
			t.Errorf("Main(%q) printed %q, want the usage", args, stderr.String())
		}
	}
}

func TestFiles(t *testing.T) {
	files := Files("/opt/chain dock/it's/chaindock")
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
		if f.Mode != 0o755 {
			t.Errorf("%s mode %v, want 0755", f.Path, f.Mode)
		}
		step := filepath.Base(f.Path)
		want := `exec '/opt/chain dock/it'\''s/chaindock' fabric-builder ` + step + ` "$@"` + "\n"
		if !strings.HasPrefix(string(f.Data), "#!/bin/sh\n") || !strings.HasSuffix(string(f.Data), want) {
			t.Errorf("%s:\n%s\nwant a sh script ending %q", f.Path, f.Data, want)
		}
	}
	if want := []string{"bin/detect", "bin/build", "bin/release"}; !slices.Equal(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
}

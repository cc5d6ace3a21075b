package lifecycle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
)

// testConnections are connections of each shape the builder accepts.
func testConnections(t *testing.T) map[string]Connection {
	t.Helper()
	org := newTestOrg(t, "org1.example.com", "Org1MSP")
	server := newTLSPair(t, org, "notary.org1.example.com")
	client := newTLSPair(t, org, "peer0.org1.example.com")
	return map[string]Connection{
		"plain": {Address: "127.0.0.1:9999"},
		"dial timeout": {
			Address:     "notary.org1.example.com:7052",
			DialTimeout: 10 * time.Second,
		},
		"tls": {
			Address:     "notary.org1.example.com:7052",
			TLSRequired: true,
			RootCert:    server.ca,
		},
		"mutual tls": {
			Address:            "notary.org1.example.com:7052",
			DialTimeout:        1500 * time.Millisecond,
			TLSRequired:        true,
			ClientAuthRequired: true,
			RootCert:           server.ca,
			ClientCert:         client.cert,
			ClientKey:          client.key,
		},
	}
}

func TestPackageIsDeterministic(t *testing.T) {
	for name, conn := range testConnections(t) {
		t.Run(name, func(t *testing.T) {
			a, err := Package("notary_1.0", conn)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Package("notary_1.0", conn)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatal("two packages of the same input differ")
			}
			if PackageID("notary_1.0", a) != PackageID("notary_1.0", b) {
				t.Fatal("two packages of the same input have different IDs")
			}
			other, err := Package("notary_1.1", conn)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(a, other) {
				t.Error("packages with different labels are equal")
			}
			moved := conn
			moved.Address = "127.0.0.2:9999"
			c, err := Package("notary_1.0", moved)
			if err != nil {
				t.Fatal(err)
			}
			if PackageID("notary_1.0", a) == PackageID("notary_1.0", c) {
				t.Error("packages of different connections have the same ID")
			}
		})
	}
}

// tarEntry is a tar header with the fields that must be fixed, and the
// entry's data.
type tarEntry struct {
	name    string
	typ     byte
	mode    int64
	modTime time.Time
	uid     int
	uname   string
	data    []byte
}

func readTarGz(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !gz.ModTime.IsZero() || gz.Name != "" {
		t.Errorf("gzip header has time %v and name %q; want neither", gz.ModTime, gz.Name)
	}
	tr := tar.NewReader(gz)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{name: h.Name, typ: h.Typeflag, mode: h.Mode, modTime: h.ModTime, uid: h.Uid, uname: h.Uname, data: data})
	}
}

func TestPackageLayout(t *testing.T) {
	conn := testConnections(t)["mutual tls"]
	pkg, err := Package("notary_1.0", conn)
	if err != nil {
		t.Fatal(err)
	}
	outer := readTarGz(t, pkg)
	if len(outer) != 2 || outer[0].name != MetadataFile || outer[1].name != CodeFile {
		t.Fatalf("package holds %v; want metadata.json then code.tar.gz", names(outer))
	}
	if got, want := string(outer[0].data), `{"type":"ccaas","label":"notary_1.0"}`; got != want {
		t.Errorf("metadata.json is %s; want %s", got, want)
	}
	inner := readTarGz(t, outer[1].data)
	if len(inner) != 1 || inner[0].name != builder.ConnectionFile {
		t.Fatalf("code.tar.gz holds %v; want connection.json only", names(inner))
	}
	for _, e := range append(outer, inner...) {
		if e.typ != tar.TypeReg || !e.modTime.Equal(time.Unix(0, 0)) || e.uid != 0 || e.uname != "" {
			t.Errorf("%s: type %q, time %v, uid %d, user %q; want a regular file at the epoch owned by nobody in particular",
				e.name, e.typ, e.modTime, e.uid, e.uname)
		}
	}
	if inner[0].mode != 0o600 {
		t.Errorf("connection.json has mode %o; it holds a key, want 600", inner[0].mode)
	}
	got, err := builder.ParseConnection(inner[0].data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got != conn {
		t.Errorf("connection.json says %+v; want %+v", got, conn)
	}

	c, err := ReadPackage(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != "ccaas" || c.Label != "notary_1.0" || !bytes.Equal(c.Code, outer[1].data) {
		t.Errorf("ReadPackage = type %q, label %q; want ccaas, notary_1.0 and the code", c.Type, c.Label)
	}
}

func names(es []tarEntry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.name)
	}
	return n
}

// TestBuilderTakesPackage unpacks each package as the peer does before it
// runs an external builder (metadata.json into the metadata directory,
// code.tar.gz into the source directory) and runs ChainDock's builder on
// it: the builder claims it and releases the connection it was made with.
func TestBuilderTakesPackage(t *testing.T) {
	for name, conn := range testConnections(t) {
		t.Run(name, func(t *testing.T) {
			pkg, err := Package("notary_1.0", conn)
			if err != nil {
				t.Fatal(err)
			}
			outer := readTarGz(t, pkg)
			mdDir, srcDir, bldDir, relDir := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(mdDir, MetadataFile), outer[0].data, 0o644)
			for _, e := range readTarGz(t, outer[1].data) {
				writeFile(t, filepath.Join(srcDir, e.name), e.data, os.FileMode(e.mode))
			}
			if err := builder.Detect(srcDir, mdDir); err != nil {
				t.Fatalf("detect: %v", err)
			}
			if err := builder.Build(srcDir, mdDir, bldDir); err != nil {
				t.Fatalf("build: %v", err)
			}
			if err := builder.Release(bldDir, relDir); err != nil {
				t.Fatalf("release: %v", err)
			}
			data, err := os.ReadFile(filepath.Join(relDir, "chaincode", "server", builder.ConnectionFile))
			if err != nil {
				t.Fatal(err)
			}
			got, err := builder.ParseConnection(data, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got != conn {
				t.Errorf("released %+v; want %+v", got, conn)
			}
		})
	}
}

func writeFile(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

func TestPackageRefusesBadConnection(t *testing.T) {
	conns := testConnections(t)
	noRoot := conns["tls"]
	noRoot.RootCert = ""
	halfMTLS := conns["mutual tls"]
	halfMTLS.ClientKey = ""
	tests := []struct {
		name   string
		conn   Connection
		fields []string
	}{
		{"no address", Connection{}, []string{"address"}},
		{"address without port", Connection{Address: "notary"}, []string{"address"}},
		{"tls without root", noRoot, []string{"root_cert"}},
		{"client auth without key", halfMTLS, []string{"client_key"}},
		{"client auth without tls", Connection{Address: "cc:7052", ClientAuthRequired: true}, []string{"client_auth_required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Package("notary_1.0", tt.conn)
			var ve *builder.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v; want a *builder.ValidationError", err)
			}
			for _, f := range tt.fields {
				if !ve.Has(f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if !strings.Contains(err.Error(), "package notary_1.0") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	for _, label := range []string{"a", "notary", "notary_1.0", "Asset-Transfer+2.1_rc.1", "0x"} {
		if err := CheckLabel(label); err != nil {
			t.Errorf("CheckLabel(%q) = %v; want nil", label, err)
		}
		if _, err := Package(label, Connection{Address: "127.0.0.1:9999"}); err != nil {
			t.Errorf("Package(%q) = %v", label, err)
		}
	}
	tests := []struct {
		label string
		say   string
	}{
		{"", "empty"},
		{"_notary", `begins with '_'`},
		{".notary", `begins with '.'`},
		{"-notary", `begins with '-'`},
		{"notary 1.0", `' ' is not allowed`},
		{"notary:1.0", `':' is not allowed`},
		{"notary/1.0", `'/' is not allowed`},
		{"notäry", `'ä' is not allowed`},
		{"ünotary", "begins with 'ü', not a letter or digit"},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			wantErr(t, CheckLabel(tt.label), ErrLabel, tt.say, "letters, digits, '_', '+', '.' and '-'")
			_, err := Package(tt.label, Connection{Address: "127.0.0.1:9999"})
			wantErr(t, err, ErrLabel, tt.say)
		})
	}
}

func TestPackageID(t *testing.T) {
	pkg := []byte("any bytes")
	sum := sha256.Sum256(pkg)
	if got, want := PackageID("notary_1.0", pkg), "notary_1.0:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("PackageID = %s; want %s", got, want)
	}
	real, err := Package("notary_1.0", Connection{Address: "127.0.0.1:9999"})
	if err != nil {
		t.Fatal(err)
	}
	if id := PackageID("notary_1.0", real); !packageIDRE.MatchString(id) {
		t.Errorf("PackageID %s is not what Definition.Validate accepts", id)
	}
}

// TestPackageIDAsPeerComputes asks Fabric's own peer CLI for the ID of a
// package, when its binary is at hand (FABRIC_BIN or PATH).
func TestPackageIDAsPeerComputes(t *testing.T) {
	peer := fabricPeerBinary(t)
	dir := t.TempDir()
	// The CLI insists on a core.yaml, though calculatepackageid reads
	// nothing from it.
	writeFile(t, filepath.Join(dir, "core.yaml"), nil, 0o644)
	for name, conn := range testConnections(t) {
		t.Run(name, func(t *testing.T) {
			pkg, err := Package("notary_1.0", conn)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".tar.gz")
			writeFile(t, p, pkg, 0o600)
			cmd := exec.CommandContext(t.Context(), peer, "lifecycle", "chaincode", "calculatepackageid", p)
			cmd.Env = append(os.Environ(), "FABRIC_CFG_PATH="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			if got, want := strings.TrimSpace(string(out)), PackageID("notary_1.0", pkg); got != want {
				t.Errorf("peer computes %s; PackageID says %s", got, want)
			}
		})
	}
}

func fabricPeerBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("FABRIC_BIN"); dir != "" {
		p := filepath.Join(dir, "peer")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FABRIC_BIN=%s: %v", dir, err)
		}
		return p
	}
	p, err := exec.LookPath("peer")
	if err != nil {
		t.Skip("no Fabric peer binary: set FABRIC_BIN to the directory of Fabric's peer, orderer and osnadmin")
	}
	return p
}

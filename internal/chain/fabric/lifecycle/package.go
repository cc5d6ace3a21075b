package lifecycle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
)

// Connection is what a package's connection.json tells the peer: how to
// dial the chaincode server.
type Connection = builder.Connection

// Names of the files in a chaincode package, as the peer reads them.
const (
	MetadataFile = "metadata.json"
	CodeFile     = "code.tar.gz"
)

// ErrLabel is returned for a label Fabric refuses.
var ErrLabel = errors.New("invalid package label")

// labelRE is Fabric's rule for a package label
// (core/chaincode/persistence.LabelRegexp).
var labelRE = regexp.MustCompile(`^[[:alnum:]][[:alnum:]_.+-]*$`)

// CheckLabel returns an error wrapping ErrLabel when Fabric would refuse
// label: it must be non-empty, begin with an ASCII letter or digit and
// hold only those and '_', '+', '.', '-'.
func CheckLabel(label string) error {
	if labelRE.MatchString(label) {
		return nil
	}
	var why string
	switch {
	case label == "":
		why = "empty"
	case !isAlnum(firstRune(label)):
		why = fmt.Sprintf("begins with %q, not a letter or digit", firstRune(label))
	default:
		for _, r := range label {
			if !isAlnum(r) && !strings.ContainsRune("_+.-", r) {
				why = fmt.Sprintf("%q is not allowed", r)
				break
			}
		}
	}
	return fmt.Errorf("%w %q: %s (letters, digits, '_', '+', '.' and '-', beginning with a letter or digit)", ErrLabel, label, why)
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// PackageID is the ID a peer gives an installed package: its label, a
// colon and the hex SHA-256 of the whole package, as Fabric's
// persistence.PackageID computes it.
func PackageID(label string, pkg []byte) string {
	sum := sha256.Sum256(pkg)
	return label + ":" + hex.EncodeToString(sum[:])
}

// connectionJSON is connection.json as Fabric's peer reads it.
type connectionJSON struct {
	Address            string `json:"address"`
	DialTimeout        string `json:"dial_timeout,omitempty"`
	TLSRequired        bool   `json:"tls_required"`
	ClientAuthRequired bool   `json:"client_auth_required,omitempty"`
	ClientKey          string `json:"client_key,omitempty"`
	ClientCert         string `json:"client_cert,omitempty"`
	RootCert           string `json:"root_cert,omitempty"`
}

// Package returns the ccaas chaincode package for a chaincode server:
// a tar.gz of metadata.json ({"type":"ccaas","label":label}) and
// code.tar.gz, which holds connection.json. It refuses a label Fabric
// would refuse and a connection the builder would refuse at install.
//
// The bytes depend only on label and conn: entries in a fixed order with
// fixed modes, owners and times, and gzip without compression, since the
// package ID hashes these bytes and must not change with the
// compressor's heuristics from one Go release to the next.
func Package(label string, conn Connection) ([]byte, error) {
	if err := CheckLabel(label); err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	cj := connectionJSON{
		Address:            conn.Address,
		TLSRequired:        conn.TLSRequired,
		ClientAuthRequired: conn.ClientAuthRequired,
		ClientKey:          conn.ClientKey,
		ClientCert:         conn.ClientCert,
		RootCert:           conn.RootCert,
	}
	if conn.DialTimeout != 0 {
		cj.DialTimeout = conn.DialTimeout.String()
	}
	connData, err := json.MarshalIndent(cj, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", label, err)
	}
	if _, err := builder.ParseConnection(connData, time.Now()); err != nil {
		return nil, fmt.Errorf("package %s: %w", label, err)
	}
	// connection.json may hold the peer's client key.
	code, err := tarGz([]tarFile{{name: builder.ConnectionFile, data: connData, mode: 0o600}})
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", label, err)
	}
	md, err := json.Marshal(builder.Metadata{Type: builder.PackageType, Label: label})
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", label, err)
	}
	pkg, err := tarGz([]tarFile{
		{name: MetadataFile, data: md, mode: 0o644},
		{name: CodeFile, data: code, mode: 0o644},
	})
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", label, err)
	}
	return pkg, nil
}

type tarFile struct {
	name string
	data []byte
	mode int64
}

// epoch is every entry's modification time.
var epoch = time.Unix(0, 0).UTC()

func tarGz(files []tarFile) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.name,
			Size:     int64(len(f.data)),
			Mode:     f.mode,
			ModTime:  epoch,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Contents is what a chaincode package holds.
type Contents struct {
	// Type and Label are from metadata.json.
	Type  string
	Label string
	// Code is code.tar.gz.
	Code []byte
}

// ReadPackage reads a chaincode package as the peer does at install: a
// tar.gz of regular files holding metadata.json, with a label Fabric
// accepts, and code.tar.gz.
func ReadPackage(pkg []byte) (Contents, error) {
	files, err := untarGz(pkg)
	if err != nil {
		return Contents{}, fmt.Errorf("read chaincode package: %w", err)
	}
	md, ok := files[MetadataFile]
	if !ok {
		return Contents{}, fmt.Errorf("read chaincode package: no %s", MetadataFile)
	}
	code, ok := files[CodeFile]
	if !ok {
		return Contents{}, fmt.Errorf("read chaincode package: no %s", CodeFile)
	}
	var m builder.Metadata
	if err := json.Unmarshal(md, &m); err != nil {
		return Contents{}, fmt.Errorf("read chaincode package: %s: %w", MetadataFile, err)
	}
	if err := CheckLabel(m.Label); err != nil {
		return Contents{}, fmt.Errorf("read chaincode package: %s: %w", MetadataFile, err)
	}
	return Contents{Type: m.Type, Label: m.Label, Code: code}, nil
}

// maxPackage bounds what untarGz inflates: far more than a ccaas package
// needs.
const maxPackage = 64 << 20

func untarGz(data []byte) (map[string][]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(gz, maxPackage))
	files := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not tar: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("tar entry %s is not a regular file (type %q)", hdr.Name, hdr.Typeflag)
		}
		if _, dup := files[hdr.Name]; dup {
			return nil, fmt.Errorf("tar entry %s appears twice", hdr.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("tar entry %s: %w", hdr.Name, err)
		}
		files[hdr.Name] = b
	}
}

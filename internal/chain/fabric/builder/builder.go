package builder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// PackageType is the metadata.json type of the packages this builder
// takes, compared without case as Fabric's own ccaas builder does.
const PackageType = "ccaas"

const (
	metadataFile = "metadata.json"
	metaInf      = "META-INF"
	// releaseServerDir is where the peer looks for connection.json after
	// release; when it is there the peer dials the chaincode instead of
	// running bin/run.
	releaseServerDir = "chaincode/server"
)

// ErrNotCCaaS is returned by Detect for a package of another type.
var ErrNotCCaaS = errors.New("not a chaincode-as-a-service package")

// Metadata is the part of a package's metadata.json the builder reads.
type Metadata struct {
	Type  string `json:"type"`
	Label string `json:"label"`
}

func readMetadata(dir string) (Metadata, error) {
	var md Metadata
	p := filepath.Join(dir, metadataFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return md, fmt.Errorf("read %s: %w", metadataFile, err)
	}
	if err := json.Unmarshal(data, &md); err != nil {
		return md, fmt.Errorf("parse %s: %w", p, err)
	}
	return md, nil
}

// Detect returns nil when the package in metadataDir is of type ccaas, and
// an error saying why not otherwise (ErrNotCCaaS for another type). It
// claims a ccaas package whatever its code holds: were it to refuse one
// without connection.json, the peer would fall back to its Docker build
// and fail there with a less useful message than Build gives.
func Detect(sourceDir, metadataDir string) error {
	_ = sourceDir // read only by Build
	md, err := readMetadata(metadataDir)
	if err != nil {
		return err
	}
	if !strings.EqualFold(md.Type, PackageType) {
		return fmt.Errorf("%w: type is %q", ErrNotCCaaS, md.Type)
	}
	return nil
}

// Build checks the package's connection.json and META-INF indexes and
// copies them into outputDir, which must exist and hold neither. On error
// nothing is written.
func Build(sourceDir, metadataDir, outputDir string) error {
	if err := Detect(sourceDir, metadataDir); err != nil {
		return err
	}
	files, err := readPackage(sourceDir)
	if err != nil {
		return err
	}
	for i := range files {
		if files[i].rel != ConnectionFile {
			files[i].rel = path.Join(metaInf, files[i].rel)
		}
	}
	return writeAll(outputDir, files)
}

// Release puts the build output where the peer reads it:
// connection.json into releaseDir/chaincode/server and the CouchDB indexes
// into releaseDir/statedb/couchdb. It checks the build output again, since
// it may come from an older build. On error nothing is written.
func Release(buildDir, releaseDir string) error {
	files, err := readPackage(buildDir)
	if err != nil {
		return err
	}
	for i := range files {
		if files[i].rel == ConnectionFile {
			files[i].rel = path.Join(releaseServerDir, ConnectionFile)
		}
		// Index paths are already statedb/couchdb/...: the peer reads the
		// release directory as the package's META-INF.
	}
	return writeAll(releaseDir, files)
}

// file is one file to write, by slash path relative to the output
// directory.
type file struct {
	rel  string
	data []byte
	mode fs.FileMode
}

// readPackage reads and checks dir/connection.json and the indexes under
// dir/META-INF; index paths are relative to META-INF.
func readPackage(dir string) ([]file, error) {
	p := filepath.Join(dir, ConnectionFile)
	data, err := readRegular(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the package has no %s: a ccaas package's code.tar.gz must hold it at its top level", ConnectionFile)
		}
		return nil, err
	}
	var problems []error
	if _, err := ParseConnection(data, time.Now()); err != nil {
		problems = append(problems, err)
	}
	indexes, err := readIndexes(filepath.Join(dir, metaInf))
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	// connection.json may hold the peer's client key.
	return append([]file{{rel: ConnectionFile, data: data, mode: 0o600}}, indexes...), nil
}

func readRegular(p string) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return os.ReadFile(p)
}

// indexPath is where Fabric accepts CouchDB index definitions in a
// package's META-INF: the channel's state database, or one private data
// collection's.
var indexPath = regexp.MustCompile(`^statedb/couchdb/(indexes|collections/[^/]+/indexes)/.+\.json$`)

// readIndexes reads and checks the CouchDB indexes under dir (a META-INF);
// a missing dir has none.
func readIndexes(dir string) ([]file, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var files []file
	var problems []FieldError
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		name := path.Join(metaInf, rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			problems = append(problems, FieldError{Field: name, Detail: "not a regular file"})
			return nil
		case !indexPath.MatchString(rel):
			problems = append(problems, FieldError{Field: name, Detail: "not a CouchDB index: META-INF may hold only statedb/couchdb/indexes/*.json and statedb/couchdb/collections/<collection>/indexes/*.json"})
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if detail := checkIndex(data); detail != "" {
			problems = append(problems, FieldError{Field: name, Detail: detail})
			return nil
		}
		files = append(files, file{rel: rel, data: data, mode: 0o644})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	if len(problems) > 0 {
		return nil, &ValidationError{File: metaInf, Problems: problems}
	}
	return files, nil
}

// checkIndex checks what the peer needs of a CouchDB index definition to
// create it: {"index": {"fields": [...]}, ...}.
func checkIndex(data []byte) string {
	var def struct {
		Index *struct {
			Fields []json.RawMessage `json:"fields"`
		} `json:"index"`
	}
	if err := json.Unmarshal(data, &def); err != nil {
		return fmt.Sprintf("not a JSON index definition: %v", err)
	}
	if def.Index == nil {
		return `index: required: {"index": {"fields": [...]}}`
	}
	if len(def.Index.Fields) == 0 {
		return "index.fields: required: the fields to index"
	}
	return ""
}

// rename is os.Rename, replaced in tests to fail half way.
var rename = os.Rename

// writeAll writes files under dir so that either all of them are there or
// none: it writes them into a staging directory inside dir, then renames
// each top-level entry into place, and undoes the renames if one fails.
func writeAll(dir string, files []file) (err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output directory %s is not a directory", dir)
	}
	var tops []string
	for _, f := range files {
		top, _, _ := strings.Cut(f.rel, "/")
		if !slices.Contains(tops, top) {
			tops = append(tops, top)
		}
	}
	for _, top := range tops {
		if _, err := os.Lstat(filepath.Join(dir, top)); err == nil {
			return fmt.Errorf("%s already holds %s: the peer gives each step an empty directory", dir, top)
		}
	}

	stage, err := os.MkdirTemp(dir, ".chaindock-stage-")
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(stage); rmErr != nil && err == nil {
			err = fmt.Errorf("write output: %w", rmErr)
		}
	}()
	for _, f := range files {
		p := filepath.Join(stage, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	var moved []string
	for _, top := range tops {
		dst := filepath.Join(dir, top)
		if err := rename(filepath.Join(stage, top), dst); err != nil {
			for _, m := range moved {
				_ = os.RemoveAll(m)
			}
			return fmt.Errorf("write output: %w", err)
		}
		moved = append(moved, dst)
	}
	return nil
}

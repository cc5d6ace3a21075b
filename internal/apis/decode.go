package apis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxSpecBytes bounds the size of one resource document.
const MaxSpecBytes = 1 << 20

// DecodeNetwork parses one Network from YAML or JSON. Unknown fields and values
// of the wrong type are errors, each named by its path; all are reported.
// When only unknown fields are wrong, the network is returned with the error,
// for callers that go on to validate it.
// Server-set fields (status, uid, timestamps) are accepted and ignored, so the
// output of "get -o yaml" can be applied again.
func DecodeNetwork(data []byte) (*Network, error) {
	if len(data) > MaxSpecBytes {
		return nil, ErrorList{{Detail: fmt.Sprintf("document is %d bytes, more than the limit of %d", len(data), MaxSpecBytes)}}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrorList{{Detail: "document is empty"}}
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, ErrorList{{Detail: "malformed YAML or JSON: " + strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")}}
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, ErrorList{{Detail: "malformed document: " + err.Error()}}
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, ErrorList{{Detail: "document must be an object with apiVersion, kind, metadata and spec"}}
	}
	var errs ErrorList
	checkShape(raw, reflect.TypeFor[Network](), "", &errs)
	var n Network
	if err := json.Unmarshal(js, &n); err != nil {
		if len(errs) == 0 {
			errs.Add("", "%v", err)
		}
		return nil, errs
	}
	// Unknown fields do not stop decoding, so that validation can report
	// its own problems in the same answer.
	return &n, errs.Err()
}

// DecodeAndValidate decodes a network and validates it, returning every
// problem of both steps at once.
func DecodeAndValidate(data []byte, reg Registries, extra func(*NetworkSpec) ErrorList) (*Network, error) {
	n, err := DecodeNetwork(data)
	if n == nil {
		return nil, err
	}
	var errs ErrorList
	if err != nil && !errors.As(err, &errs) {
		return nil, err
	}
	errs = append(errs, ValidateNetwork(n, reg)...)
	if extra != nil {
		errs = append(errs, extra(&n.Spec)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return n, nil
}

var durationType = reflect.TypeFor[Duration]()

// checkShape compares a decoded JSON value with the Go type it will be
// decoded into, and records unknown fields and type mismatches by path.
func checkShape(v any, t reflect.Type, path string, errs *ErrorList) {
	if v == nil {
		return // null leaves the zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		s, ok := v.(string)
		if !ok {
			errs.Add(path, "must be a duration string such as \"1s\"")
			return
		}
		var d Duration
		if err := d.UnmarshalJSON([]byte(fmt.Sprintf("%q", s))); err != nil {
			errs.Add(path, "%v", err)
		}
		return
	}
	if t == reflect.TypeFor[NetworkStatus]() {
		return // observed state is the server's; ignored on input
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.PkgPath() == "time" {
			if _, ok := v.(string); !ok {
				errs.Add(path, "must be an RFC 3339 time string")
			}
			return
		}
		obj, ok := v.(map[string]any)
		if !ok {
			errs.Add(path, "must be an object")
			return
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			f, ok := fields[k]
			if !ok {
				errs.Add(Path(path, k), "unknown field")
				continue
			}
			checkShape(obj[k], f.Type, Path(path, k), errs)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			errs.Add(path, "must be a list")
			return
		}
		for i, e := range arr {
			checkShape(e, t.Elem(), Index(path, i), errs)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			errs.Add(path, "must be an object")
			return
		}
		for _, k := range sortedKeys(obj) {
			checkShape(obj[k], t.Elem(), Path(path, k), errs)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			errs.Add(path, "must be a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			errs.Add(path, "must be true or false")
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			errs.Add(path, "must be a whole number")
			return
		}
		if _, err := n.Int64(); err != nil {
			errs.Add(path, "must be a whole number, not %s", n.String())
		}
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			errs.Add(path, "must be a whole number")
			return
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			errs.Add(path, "must be a whole number from 0 to %d, not %s", uint64(1)<<t.Bits()-1, n.String())
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	_ "github.com/chaindock/chaindock/internal/plugins"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/internal/store/sqlite"
)

const token = "0123456789abcdef0123456789abcdef0123456789abcdef"

type fixture struct {
	srv      *httptest.Server
	store    store.Store
	enqueued []string
	mu       sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "chaindock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: st}
	h := api.New(api.Options{
		Store: st, Token: token,
		Enqueue:    func(n string) { f.mu.Lock(); f.enqueued = append(f.enqueued, n); f.mu.Unlock() },
		Registries: apis.Registries{Chains: []string{"cometbft"}, Runtimes: []string{"process"}},
		Validate: func(spec *apis.NetworkSpec) apis.ErrorList {
			if d, err := chain.Get(spec.Chain); err == nil {
				return d.Validate(spec)
			}
			return nil
		},
	})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path, body, ctype string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (f *fixture) count(t *testing.T) int {
	t.Helper()
	l, err := f.store.List(t.Context(), apis.KindNetwork)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

const good = `apiVersion: chaindock/v1
kind: Network
metadata: {name: good}
spec: {chain: cometbft, runtime: process, validators: 4}
`

func TestCreateAndGet(t *testing.T) {
	f := newFixture(t)
	code, hdr, body := f.do(t, "POST", "/api/v1/networks", good, "application/yaml")
	if code != http.StatusCreated || hdr.Get("Location") != "/api/v1/networks/good" {
		t.Fatalf("create: %d %s", code, body)
	}
	var n apis.Network
	if err := json.Unmarshal(body, &n); err != nil {
		t.Fatal(err)
	}
	if n.Metadata.UID == "" || n.Metadata.ResourceVersion != "1" || n.Status.Phase != apis.PhasePending || n.Spec.Consensus.TimeoutCommit.String() != "1s" {
		t.Fatalf("created network: %+v", n)
	}
	if f.enqueued[0] != "good" {
		t.Fatalf("the controller was not told: %v", f.enqueued)
	}
	code, _, body = f.do(t, "GET", "/api/v1/networks/good", "", "")
	if code != 200 || !bytes.Contains(body, []byte(`"name": "good"`)) {
		t.Fatalf("get: %d %s", code, body)
	}
	// JSON works as well as YAML.
	js := `{"apiVersion":"chaindock/v1","kind":"Network","metadata":{"name":"json"},"spec":{"chain":"cometbft","runtime":"process","validators":1}}`
	if code, _, body := f.do(t, "POST", "/api/v1/networks", js, "application/json"); code != http.StatusCreated {
		t.Fatalf("create from JSON: %d %s", code, body)
	}
	code, _, body = f.do(t, "GET", "/api/v1/networks/good/events", "", "")
	if code != 200 || !bytes.Contains(body, []byte(`"reason": "Created"`)) {
		t.Fatalf("events: %d %s", code, body)
	}
	code, _, body = f.do(t, "DELETE", "/api/v1/networks/good", "", "")
	if code != http.StatusAccepted || !bytes.Contains(body, []byte("deletionTimestamp")) {
		t.Fatalf("delete: %d %s", code, body)
	}
}

// TestBadInput: every kind of bad spec gets a 4xx problem naming the
// field, and nothing is stored.
func TestBadInput(t *testing.T) {
	spec := func(name, specBody string) string {
		return fmt.Sprintf("apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s}\nspec: %s\n", name, specBody)
	}
	cases := []struct {
		name   string
		body   string
		ctype  string
		status int
		fields []string // every field the problem must name
		detail string   // a phrase the detail must have
	}{
		{"malformed YAML", "apiVersion: chaindock/v1\nkind: [Network\n", "application/yaml", 400, nil, "malformed"},
		{"not an object", "- a\n- b\n", "application/yaml", 400, nil, "must be an object"},
		{"empty body", "", "application/yaml", 400, nil, "empty"},
		{"unknown fields", spec("x", "{chain: cometbft, runtime: process, validators: 4, validatorz: 3, consensus: {timeoutComit: 1s}}"), "", 422,
			[]string{"spec.validatorz", "spec.consensus.timeoutComit"}, ""},
		{"unknown top-level field", "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: x, nmae: y}\nspec: {chain: cometbft, runtime: process, validators: 1}\nextra: 1\n", "", 422,
			[]string{"extra", "metadata.nmae"}, ""},
		{"wrong types", spec("x", `{chain: cometbft, runtime: process, validators: "four", fullNodes: 1.5, consensus: {timeoutCommit: 5}}`), "", 422,
			[]string{"spec.validators", "spec.fullNodes", "spec.consensus.timeoutCommit"}, ""},
		{"zero validators", spec("x", "{chain: cometbft, runtime: process, validators: 0}"), "", 422, []string{"spec.validators"}, ""},
		{"1000 validators", spec("x", "{chain: cometbft, runtime: process, validators: 1000}"), "", 422, []string{"spec.validators"}, ""},
		{"path in name", spec("../etc", "{chain: cometbft, runtime: process, validators: 1}"), "", 422, []string{"metadata.name"}, ""},
		{"slash in name", spec(`"a/b"`, "{chain: cometbft, runtime: process, validators: 1}"), "", 422, []string{"metadata.name"}, ""},
		{"upper case name", spec("Demo", "{chain: cometbft, runtime: process, validators: 1}"), "", 422, []string{"metadata.name"}, ""},
		{"missing name", "apiVersion: chaindock/v1\nkind: Network\nmetadata: {}\nspec: {chain: cometbft, runtime: process, validators: 1}\n", "", 422, []string{"metadata.name"}, ""},
		{"unknown chain and runtime", spec("x", "{chain: bitcoin, runtime: mainframe, validators: 1}"), "", 422, []string{"spec.chain", "spec.runtime"}, ""},
		{"wrong kind and version", "apiVersion: v2\nkind: Pod\nmetadata: {name: x}\nspec: {chain: cometbft, runtime: process, validators: 1}\n", "", 422, []string{"apiVersion", "kind"}, ""},
		{"bad timing and resources", spec("x", "{chain: cometbft, runtime: process, validators: 1, consensus: {timeoutCommit: 1ms, timeoutPropose: -1s}, resources: {cpu: lots, memory: \"-1Gi\"}}"), "", 422,
			[]string{"spec.consensus.timeoutCommit", "spec.consensus.timeoutPropose", "spec.resources.cpu", "spec.resources.memory"}, ""},
		{"organizations mixed with counts", spec("x", "{chain: cometbft, runtime: process, validators: 2, organizations: [{name: org1, validators: 1}, {name: org1, validators: 0, fullNodes: -1}]}"), "", 422,
			[]string{"spec.validators", "spec.organizations[1].name", "spec.organizations[1].fullNodes"}, ""},
		{"driver-specific field", spec("x", "{chain: cometbft, runtime: process, validators: 1, cometbft: {app: evm}}"), "", 422, []string{"spec.cometbft.app"}, ""},
		{"oversized body", spec("x", "{chain: cometbft, runtime: process, validators: 1}") + "# " + strings.Repeat("x", apis.MaxSpecBytes) + "\n", "", 413, nil, "larger than"},
		{"unsupported media type", good, "text/html", 415, nil, "application/json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			code, hdr, body := f.do(t, "POST", "/api/v1/networks", tc.body, tc.ctype)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p api.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field)
			}
			for _, want := range tc.fields {
				if !slices.Contains(got, want) {
					t.Errorf("problem does not name %s; it names %v: %s", want, got, body)
				}
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q does not say %q", p.Detail, tc.detail)
			}
			if n := f.count(t); n != 0 {
				t.Errorf("%d networks stored after a refused request", n)
			}
			if len(f.enqueued) != 0 {
				t.Errorf("the controller was told of a refused request: %v", f.enqueued)
			}
		})
	}
}

func TestDuplicateName(t *testing.T) {
	f := newFixture(t)
	if code, _, body := f.do(t, "POST", "/api/v1/networks", good, ""); code != 201 {
		t.Fatalf("first create: %d %s", code, body)
	}
	code, _, body := f.do(t, "POST", "/api/v1/networks", good, "")
	if code != http.StatusConflict || !strings.Contains(string(body), "metadata.name") {
		t.Fatalf("duplicate: %d %s", code, body)
	}
	if n := f.count(t); n != 1 {
		t.Fatalf("%d networks stored, want 1", n)
	}
}

func TestConcurrentCreatesOneWins(t *testing.T) {
	f := newFixture(t)
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i], _, _ = f.do(t, "POST", "/api/v1/networks", good, "") })
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case 201:
			won++
		case 409:
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	if won != 1 || f.count(t) != 1 {
		t.Fatalf("%d creates won and %d networks stored; want exactly 1 (%v)", won, f.count(t), codes)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/api/v1/networks", "/api/v1/events", "/metrics", "/api/v1/openapi.json", "/api/v1/networks/x/nodes/y/logs"} {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + token, "Bearer"} {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with %q: %d, want 401 with a challenge", path, auth, resp.StatusCode)
			}
		}
	}
	resp, err := http.Get(f.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if code, _, _ := f.do(t, "GET", "/metrics", "", ""); code != 200 {
		t.Fatalf("metrics with the token: %d", code)
	}
}

func TestNotFoundAndParameters(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/v1/networks/none", 404},
		{"DELETE", "/api/v1/networks/none", 404},
		{"GET", "/api/v1/networks/none/nodes", 404},
		{"GET", "/api/v1/networks/none/events", 404},
		{"GET", "/api/v1/nothing", 404},
		{"PATCH", "/api/v1/networks", 405},
		{"GET", "/api/v1/events?limit=0", 400},
		{"GET", "/api/v1/events?after=abc", 400},
	} {
		code, hdr, body := f.do(t, tc.method, tc.path, "", "")
		if code != tc.status || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s, want %d problem", tc.method, tc.path, code, body, tc.status)
		}
	}
	f.do(t, "POST", "/api/v1/networks", good, "")
	if code, _, body := f.do(t, "GET", "/api/v1/networks/good/nodes/validator-9", "", ""); code != 404 || !strings.Contains(string(body), "validator-9") {
		t.Errorf("missing node: %d %s", code, body)
	}
	if code, _, body := f.do(t, "GET", "/api/v1/networks/good/nodes/validator-0/logs?tail=x", "", ""); code != 400 || !strings.Contains(string(body), "tail") {
		t.Errorf("bad tail: %d %s", code, body)
	}
}

// TestOpenAPICoversEveryRoute keeps the served document honest.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	a := api.New(api.Options{Token: token})
	routes := a.Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes found: %v", len(routes), routes)
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		path = strings.TrimSuffix(path, "/")
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("route %s is not in openapi.json", r)
			continue
		}
		op, ok := ops[strings.ToLower(method)]
		if !ok {
			t.Errorf("route %s: openapi.json has no %s operation for %s", r, method, path)
			continue
		}
		// Responses are keyed by status code (or default).
		var o struct {
			Responses map[string]json.RawMessage `json:"responses"`
		}
		if err := json.Unmarshal(op, &o); err != nil || len(o.Responses) == 0 {
			t.Errorf("route %s: no responses (%v)", r, err)
		}
		for code := range o.Responses {
			if _, err := strconv.Atoi(code); err != nil && code != "default" {
				t.Errorf("route %s: response key %q is not a status code", r, code)
			}
		}
	}
}

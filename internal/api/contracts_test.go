package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
)

func pkgBody(owner, name, version, extra string) string {
	o := ""
	if owner != "" {
		o = fmt.Sprintf(`"owner":%q,`, owner)
	}
	return fmt.Sprintf(`{%s"name":%q,"version":%q,"chain":"cometbft","kind":"abci-module","description":"binds notary",
		"files":[{"path":"module.json","text":"{\"module\":\"notary\",\"version\":\"1.0.0\"}"},{"path":"logo.bin","data":"AAEC/w=="}]%s}`, o, name, version, extra)
}

// TestPackages: templates are visible to all, an organization's packages
// only to its members; uploads are validated field by field; a version
// never changes.
func TestPackages(t *testing.T) {
	tn := newTenants(t)
	a1, m1, au1, a2, root := tn.callers["a1"], tn.callers["m1"], tn.callers["au1"], tn.callers["a2"], tn.callers["root"]

	var list api.PackageList
	tn.decode(tn.must(a2, "GET", "/api/v1/packages", "", 200), &list)
	if len(list.Items) != 2 || list.Items[0].Owner != apis.BuiltinOwner || list.Items[0].Files != nil {
		t.Fatalf("templates: %+v", list.Items)
	}
	var tpl apis.Package
	tn.decode(tn.must(a2, "GET", "/api/v1/packages/builtin/notary/1.0.0", "", 200), &tpl)
	if len(tpl.Files) == 0 || tpl.Checksum != tpl.Digest() {
		t.Fatalf("template notary: files %d checksum %s digest %s", len(tpl.Files), tpl.Checksum, tpl.Digest())
	}

	var up apis.Package
	tn.decode(tn.must(m1, "POST", "/api/v1/packages", pkgBody("org1", "mynotary", "1.0.0", ""), 201), &up)
	if up.Owner != "org1" || up.CreatedBy != "user:m1" || !strings.HasPrefix(up.Checksum, "sha256:") || up.Files != nil {
		t.Fatalf("uploaded: %+v", up)
	}
	// The owner defaults to the caller's only organization.
	tn.must(a1, "POST", "/api/v1/packages", pkgBody("", "mynotary", "1.1.0", ""), 201)
	// A version never changes.
	code, body := tn.call(a1, "POST", "/api/v1/packages", pkgBody("org1", "mynotary", "1.0.0", ""))
	if code != 409 || !strings.Contains(string(body), "upload a new version") {
		t.Fatalf("same version again: %d %s", code, body)
	}
	// A checksum that does not match the content.
	code, body = tn.call(a1, "POST", "/api/v1/packages", pkgBody("org1", "mynotary", "1.2.0", `,"checksum":"sha256:00"`))
	if code != 422 || !strings.Contains(string(body), `"field":"checksum"`) {
		t.Fatalf("wrong checksum: %d %s", code, body)
	}
	// Every problem at once, each with its field.
	code, body = tn.call(a1, "POST", "/api/v1/packages", `{"owner":"org1","name":"Bad_Name","version":"v1","chain":"fabricx","kind":"",
		"files":[{"path":"../x","text":"a"},{"path":"a","text":"b","data":"AA=="}]}`)
	for _, want := range []string{`"field":"name"`, `"field":"version"`, `"field":"chain"`, `"field":"kind"`, `"field":"files[0].path"`, `"field":"files[1]"`} {
		if code != 422 || !strings.Contains(string(body), want) {
			t.Errorf("bad package: %d, want %s in %s", code, want, body)
		}
	}
	code, body = tn.call(a1, "POST", "/api/v1/packages", strings.Replace(pkgBody("org1", "other", "1.0.0", ""), `\"notary\"`, `\"bank\"`, 1))
	if code != 422 || !strings.Contains(string(body), `unknown module \"bank\"`) {
		t.Fatalf("unknown module: %d %s", code, body)
	}
	code, body = tn.call(a1, "POST", "/api/v1/packages", `{"name":"x","version":"1.0.0","surprise":1}`)
	if code != 400 || !strings.Contains(string(body), "surprise") {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	// Who may upload: not an auditor, not into another organization, not as builtin.
	for _, c := range []struct {
		caller *http.Client
		body   string
		want   int
	}{
		{au1, pkgBody("org1", "x", "1.0.0", ""), 403},
		{a2, pkgBody("org1", "x", "1.0.0", ""), 403},
		{root, pkgBody("builtin", "x", "1.0.0", ""), 422},
		{root, pkgBody("nosuchorg", "x", "1.0.0", ""), 422},
	} {
		if code, body := tn.call(c.caller, "POST", "/api/v1/packages", c.body); code != c.want {
			t.Errorf("upload: %d, want %d: %s", code, c.want, body)
		}
	}
	// Who sees what.
	tn.decode(tn.must(a2, "GET", "/api/v1/packages", "", 200), &list)
	if len(list.Items) != 2 {
		t.Fatalf("org2 sees %d packages, want the 2 templates only", len(list.Items))
	}
	tn.must(a2, "GET", "/api/v1/packages/org1/mynotary/1.0.0", "", 404)
	tn.decode(tn.must(au1, "GET", "/api/v1/packages?owner=org1", "", 200), &list)
	if len(list.Items) != 2 || list.Items[1].Version != "1.1.0" {
		t.Fatalf("auditor of org1 sees %+v", list.Items)
	}
	var got apis.Package
	tn.decode(tn.must(au1, "GET", "/api/v1/packages/org1/mynotary/1.0.0", "", 200), &got)
	if f, ok := got.File("logo.bin"); !ok || string(f.Content()) != "\x00\x01\x02\xff" || got.Digest() != up.Checksum {
		t.Fatalf("downloaded package: %+v", got)
	}
	tn.decode(tn.must(root, "GET", "/api/v1/packages?chain=cometbft&name=mynotary", "", 200), &list)
	if len(list.Items) != 2 {
		t.Fatalf("platform admin filtered by name: %+v", list.Items)
	}

	tn.must(a2, "DELETE", "/api/v1/packages/org1/mynotary/1.1.0", "", 404)
	tn.must(au1, "DELETE", "/api/v1/packages/org1/mynotary/1.1.0", "", 403)
	tn.must(a1, "DELETE", "/api/v1/packages/builtin/notary/1.0.0", "", 403)
	tn.must(m1, "DELETE", "/api/v1/packages/org1/mynotary/1.1.0", "", 204)
	tn.must(m1, "GET", "/api/v1/packages/org1/mynotary/1.1.0", "", 404)

	// No organization may take the templates' owner name.
	code, body = tn.call(root, "POST", "/api/v1/organizations", `{"name":"builtin"}`)
	if code != 422 || !strings.Contains(string(body), "reserved") {
		t.Fatalf("organization builtin: %d %s", code, body)
	}
}

// TestContractRequests: contract operations are checked before the chain
// is asked; a network that is not running takes none.
func TestContractRequests(t *testing.T) {
	tn := newTenants(t)
	a1, au1, a2 := tn.callers["a1"], tn.callers["au1"], tn.callers["a2"]
	var list api.ContractList
	tn.decode(tn.must(au1, "GET", "/api/v1/networks/net1/contracts", "", 200), &list)
	if len(list.Items) != 0 {
		t.Fatalf("a new network has contracts: %+v", list.Items)
	}
	tn.must(a2, "GET", "/api/v1/networks/net1/contracts", "", 404)
	tn.must(au1, "POST", "/api/v1/networks/net1/contracts", `{"name":"notary","package":"builtin/notary@1.0.0"}`, 403)
	tn.must(a2, "POST", "/api/v1/networks/net1/contracts", `{"name":"notary","package":"builtin/notary@1.0.0"}`, 404)
	for body, want := range map[string]string{
		`{"name":"Not A Name","package":"builtin/notary@1.0.0"}`:                                                                                          `"field":"name"`,
		`{"name":"n","package":"notary"}`:                                                                                                                 `"field":"package"`,
		`{"name":"n","package":"builtin/notary@1.0.0","endorsementPolicy":"` + strings.Repeat("x", 4097) + `"}`:                                           `"field":"endorsementPolicy"`,
		`{"name":"n","package":"builtin/notary@1.0.0","channel":"` + strings.Repeat("c", 161) + `"}`:                                                      `"field":"channel"`,
		`{"name":"n","package":"builtin/notary@1.0.0","collections":[` + strings.Repeat(`{"name":"c"},`, 32) + `{"name":"c"}]}`:                           `"field":"collections"`,
		`{"name":"n","package":"builtin/notary@1.0.0","collections":[{"name":"c","policy":"` + strings.Repeat("x", 4097) + `"}]}`:                         `"field":"collections[0].policy"`,
		`{"name":"n","package":"builtin/notary@1.0.0","collections":[{"name":"c"},{"name":"d","endorsementPolicy":"` + strings.Repeat("x", 4097) + `"}]}`: `"field":"collections[1].endorsementPolicy"`,
	} {
		if code, b := tn.call(a1, "POST", "/api/v1/networks/net1/contracts", body); code != 422 || !strings.Contains(string(b), want) {
			t.Errorf("deploy %s: %d %s", body, code, b)
		}
	}
	code, b := tn.call(a1, "POST", "/api/v1/networks/net1/contracts", `{"name":"notary","package":"builtin/notary@1.0.0"}`)
	if code != 409 || !strings.Contains(string(b), "running network") {
		t.Fatalf("deploy on a network that never ran: %d %s", code, b)
	}
	tn.must(a1, "PUT", "/api/v1/networks/net1/contracts/notary", `{"package":"builtin/notary@1.0.0"}`, 409)
	tn.must(a1, "GET", "/api/v1/networks/net1/contracts/notary", "", 404)
	var p api.Problem
	_ = json.Unmarshal(tn.must(a1, "PUT", "/api/v1/networks/net1/contracts/notary", `{"name":"other","package":"builtin/notary@1.0.0"}`, 422), &p)
	if len(p.Errors) != 1 || p.Errors[0].Field != "name" {
		t.Fatalf("upgrade with another name: %+v", p)
	}
}

package api_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestQueryBody: a query with transient data is a POST on Fabric
// networks only; its body is checked field by field, the URL form of it
// is refused, and nothing of the transient data is answered or logged.
func TestQueryBody(t *testing.T) {
	tn := newTenants(t)
	tn.fabricNetwork("fab", "")
	m1 := tn.callers["m1"]
	const secret = "appraised-by-smith"
	transient := `{"asset":{"text":"` + secret + `"}}`

	for _, tt := range []struct {
		name, method, path, body string
		say                      []string
	}{
		{"a cometbft network", "POST", "/api/v1/networks/net1/query", `{"path":"/account"}`, []string{"POST .../query is for Fabric chaincode"}},
		{"an unknown field", "POST", "/api/v1/networks/fab/query", `{"path":"/asset/VerifyPrivateAsset","transient":` + transient + `,"data":"x"}`, []string{`unknown field \"data\"`}},
		{"not JSON", "POST", "/api/v1/networks/fab/query", `{"path":"/asset/F","transient":` + transient + `,}`, []string{"not JSON at byte"}},
		{"a number argument", "POST", "/api/v1/networks/fab/query", `{"path":"/asset/F","args":[1]}`, []string{"args", "not string"}},
		{"bad path and height", "POST", "/api/v1/networks/fab/query", `{"path":"asset/F","minHeight":-1,"transient":` + transient + `}`,
			[]string{`path: must start with /`, "minHeight: -1 is negative"}},
		{"transient in the URL", "GET", "/api/v1/networks/fab/query?" + url.Values{"path": {"/asset/F"}, "data": {`{"transient":` + transient + `}`}}.Encode(), "",
			[]string{"POST .../query"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, b := tn.call(m1, tt.method, tt.path, tt.body)
			if code != 400 {
				t.Fatalf("%d %s; want 400", code, b)
			}
			for _, s := range tt.say {
				if !strings.Contains(string(b), s) {
					t.Errorf("answer %s does not say %q", b, s)
				}
			}
			if strings.Contains(string(b), secret) {
				t.Errorf("answer %s quotes the transient data", b)
			}
		})
	}
	// Reading the network is what a query needs.
	if code, b := tn.call(tn.callers["out"], "POST", "/api/v1/networks/fab/query", `{"path":"/asset/F","transient":`+transient+`}`); code != 404 && code != 403 {
		t.Errorf("a stranger's query: %d %s; want 403 or 404", code, b)
	}
	if strings.Contains(tn.logs.String(), secret) {
		t.Errorf("the server's log has the transient data")
	}
}

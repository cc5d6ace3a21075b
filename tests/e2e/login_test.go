package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCLILogin: a user logs in with the CLI, acts with its roles, and logs out.
func TestCLILogin(t *testing.T) {
	binDir, dataDir := setup(t)
	srv := startServer(t, binDir, dataDir, "--port-range", "31600-31699")
	defer srv.Stop()
	ctx := t.Context()
	for _, req := range []struct{ path, body string }{
		{"/api/v1/users", `{"name":"alice","password":"alice's long password"}`},
		{"/api/v1/organizations", `{"name":"org1","admin":"alice"}`},
	} {
		resp, err := srv.Client.Raw(ctx, "POST", req.path, []byte(req.body), "application/json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	c := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	if _, errOut, err := c.run("wrong password\n", "login", "--user", "alice"); err == nil || !strings.Contains(errOut, "unknown user or wrong password") {
		t.Fatalf("login with a wrong password: %v %s", err, errOut)
	}
	out, errOut, err := c.run("alice's long password\n", "login", "--user", "alice")
	if err != nil || !strings.Contains(out, "logged in as alice") {
		t.Fatalf("login: %v %s %s", err, out, errOut)
	}
	if w := c.ok("whoami"); !strings.Contains(w, "user alice") || !strings.Contains(w, "org1: admin") {
		t.Fatalf("whoami after login: %q", w)
	}
	// alice may not do what only the platform administrator may.
	c.fails("HTTP 403", "keys", "list")
	c.ok("logout")
	if w := c.ok("whoami"); !strings.Contains(w, "admin-token admin") {
		t.Fatalf("whoami after logout: %q", w)
	}
	c.fails("not logged in", "logout")
}

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaindock/chaindock/tests/framework"
)

// TestSecretsAtRest: a validator's private key, read from the node's own
// file, appears nowhere in the store's files, the API's answers or the
// server's log, before and after a key rotation made while the network runs.
func TestSecretsAtRest(t *testing.T) {
	binDir, dataDir := setup(t)
	ctx := t.Context()
	args := []string{"--port-range", "31500-31599", "--probe-interval", "500ms"}
	srv := startServer(t, binDir, dataDir, args...)
	c := srv.Client
	if _, err := c.CreateNetwork(ctx, framework.CometBFTSpec("sealed", 2, "300ms")); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.AllAtLeast(ctx, c, "sealed", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dataDir, "runtime", "process", "sealed.validator-0", "home", "config", "priv_validator_key.json")
	var pv struct {
		PrivKey struct {
			Value string `json:"value"`
		} `json:"priv_key"`
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pv); err != nil || len(pv.PrivKey.Value) < 40 {
		t.Fatalf("read the node's key: %v %q", err, pv.PrivKey.Value)
	}
	raw, err := base64.StdEncoding.DecodeString(pv.PrivKey.Value)
	if err != nil {
		t.Fatal(err)
	}
	// Every form the key can be stored in: its text, its bytes, hex, and
	// the base64 of the whole file (how a plan holds file contents).
	needles := map[string][]byte{
		"key text":           []byte(pv.PrivKey.Value),
		"key bytes":          raw,
		"key hex":            []byte(hex.EncodeToString(raw)),
		"key file as base64": []byte(base64.StdEncoding.EncodeToString(b)),
	}
	contains := func(data []byte) string {
		for what, n := range needles {
			if bytes.Contains(data, n) {
				return what
			}
		}
		return ""
	}

	checkNowhere := func(when string) {
		t.Helper()
		for _, name := range []string{"chaindock.db", "chaindock.db-wal", "chaindock.db-shm"} {
			data, err := os.ReadFile(filepath.Join(dataDir, name))
			if what := contains(data); err == nil && what != "" {
				t.Errorf("%s: %s is in %s in clear", when, what, name)
			}
		}
		for _, path := range []string{"/api/v1/networks/sealed", "/api/v1/networks", "/api/v1/networks/sealed/events", "/api/v1/events", "/api/v1/admin/keys", "/metrics"} {
			resp, err := c.Raw(ctx, "GET", path, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if what := contains(body); what != "" {
				t.Errorf("%s: GET %s returns the %s", when, path, what)
			}
		}
		logData, _ := os.ReadFile(srv.LogPath())
		if what := contains(logData); what != "" {
			t.Errorf("%s: the server log holds the %s", when, what)
		}
	}
	checkNowhere("after deploy")

	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	before := cl.ok("keys", "list")
	out := cl.ok("keys", "rotate")
	if !strings.Contains(out, "resealed:    1 stored secrets") {
		t.Fatalf("keys rotate:\n%s", out)
	}
	after := cl.ok("keys", "list")
	if before == after || strings.Contains(after, ",") {
		t.Fatalf("rotation did not replace the key: before %q after %q", before, after)
	}
	checkNowhere("after rotation")

	// The plan still opens: a restarted server re-adopts the nodes and
	// delete finds every node through the plan.
	srv.Kill()
	srv = startServer(t, binDir, dataDir, args...)
	c = srv.Client
	if _, err := framework.AllAtLeast(ctx, c, "sealed", 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteNetwork(ctx, "sealed"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitGone(ctx, c, "sealed", time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
}

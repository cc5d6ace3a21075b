package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/pkg/apptx"
)

// checkContracts takes a contract through its life on a running network
// with the chaindock application, with the CLI: a template deployed, an
// organization's package uploaded from a directory and bound, an upgrade
// to a module version the nodes do not serve refused, removal making the
// gateway refuse the module's transactions, and deployment again.
func checkContracts(t *testing.T, binDir, dataDir string, c *client.Client, network, chainID string) {
	t.Helper()
	ctx := t.Context()
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/organizations", []byte(`{"name":"acme"}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}

	out := cl.ok("get", "packages")
	for _, want := range []string{"builtin/notary@1.0.0", "builtin/asset@1.0.0", "abci-module"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get packages does not list %s:\n%s", want, out)
		}
	}
	out = cl.ok("contract", "deploy", network, "asset", "builtin/asset@1.0.0")
	if !strings.Contains(out, "contract/asset deployed: revision 1, builtin/asset@1.0.0 (module/asset)") {
		t.Fatalf("deploy asset: %s", out)
	}
	cl.fails("is deployed on network", "contract", "deploy", network, "asset", "builtin/asset@1.0.0")

	// An organization's package, pushed from a directory, in two versions.
	for _, v := range []string{"1.0.0", "1.1.0"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "module.json"), []byte(`{"module":"notary","version":"`+v+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "terms.pdf"), []byte{0x25, 0x50, 0xff, 0xfe}, 0o644); err != nil {
			t.Fatal(err)
		}
		out = cl.ok("package", "push", "--dir", dir, "--owner", "acme", "--name", "acme-notary", "--version", v,
			"--chain", "cometbft", "--kind", "abci-module", "--description", "notarisation for acme")
		if !strings.Contains(out, "package/acme/acme-notary@"+v+" pushed (sha256:") {
			t.Fatalf("push %s: %s", v, out)
		}
	}
	pulled := t.TempDir()
	out = cl.ok("package", "pull", "acme/acme-notary@1.0.0", "--dir", pulled)
	if b, err := os.ReadFile(filepath.Join(pulled, "terms.pdf")); err != nil || string(b) != "\x25\x50\xff\xfe" || !strings.Contains(out, "verified") {
		t.Fatalf("pulled package: %q %v %s", b, err, out)
	}
	cl.ok("contract", "deploy", network, "notary", "acme/acme-notary@1.0.0")
	cl.fails("serve module notary 1.0.0, not 1.1.0", "contract", "upgrade", network, "notary", "acme/acme-notary@1.1.0")
	cl.fails("is not a version of acme/acme-notary", "contract", "upgrade", network, "notary", "builtin/notary@1.0.0")
	cl.fails("is deployed on 1 network", "package", "delete", "acme/acme-notary@1.0.0")
	cl.ok("package", "delete", "acme/acme-notary@1.1.0")

	acct := newAccount(t)
	notarise := func() submitted {
		t.Helper()
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", acct.addr(), acct.nonce))
		acct.nonce++
		s, err := submitTx(ctx, c, network, acct.sign(t, apptx.Notarize(chainID, acct.pub, acct.nonce, hex.EncodeToString(sum[:]), nil, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := notarise(); s.status != http.StatusOK {
		t.Fatalf("notarise with notary deployed: %+v", s)
	}
	out = cl.ok("contract", "remove", network, "notary")
	if !strings.Contains(out, "contract/notary removed: revision 2") {
		t.Fatalf("remove: %s", out)
	}
	s := notarise()
	if s.status != http.StatusConflict || !strings.Contains(s.problem.Detail, "contract notary (module/notary) was removed") {
		t.Fatalf("notarise after removal: %+v", s)
	}
	acct.nonce-- // refused by the gateway, never reached the chain
	cl.fails("was removed from network", "contract", "upgrade", network, "notary", "acme/acme-notary@1.0.0")
	cl.ok("package", "delete", "acme/acme-notary@1.0.0") // no network runs it now
	cl.ok("contract", "deploy", network, "notary", "builtin/notary@1.0.0")
	if s := notarise(); s.status != http.StatusOK {
		t.Fatalf("notarise after deploying again: %+v", s)
	}
	hist := cl.ok("contract", "history", network, "notary")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "deploy") || !strings.Contains(lines[2], "remove") || !strings.Contains(lines[3], "builtin/notary@1.0.0") {
		t.Fatalf("history:\n%s", hist)
	}
	var list api.ContractList
	if err := getJSON(ctx, c, "/api/v1/networks/"+network+"/contracts", &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].Name != "asset" || list.Items[1].Revision != 3 || list.Items[1].Height < 1 {
		t.Fatalf("contracts: %+v", list.Items)
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
)

// TestClusterRegistration registers real clusters through the CLI: an
// administrator's kubeconfig is Ready, a user's without permissions
// Forbidden with what it lacks; a kubeconfig that would run a program on
// the server is refused before anything is stored. The kubeconfig is never
// shown and is stored sealed.
func TestClusterRegistration(t *testing.T) {
	kc := kubetest.Start(t, 0)
	binDir, dataDir := setup(t)
	startServer(t, binDir, dataDir, "--port-range", "31900-31924")
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	admin, err := os.ReadFile(kc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}

	var c api.Cluster
	if err := json.Unmarshal([]byte(cl.ok("-o", "json", "cluster", "add", "lab", "--kubeconfig", kc.Kubeconfig, "--description", "the test cluster")), &c); err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != clusters.PhaseReady || !strings.HasPrefix(c.Status.Version, "v1.34") || !strings.Contains(strings.TrimSuffix(kc.Config.Host, "/"), strings.TrimPrefix(c.Server, "https://")) || c.Context == "" {
		t.Fatalf("registered: %+v (the cluster is at %s)", c, kc.Config.Host)
	}
	cl.fails("cluster lab is already registered", "cluster", "add", "lab", "--kubeconfig", kc.Kubeconfig)

	nobody := filepath.Join(t.TempDir(), "nobody")
	if err := os.WriteFile(nobody, kc.UserKubeconfig(t, "nobody"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cl.ok("-o", "json", "cluster", "add", "weak", "--kubeconfig", nobody)), &c); err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != clusters.PhaseForbidden || len(c.Status.Missing) != len(clusters.Permissions) {
		t.Fatalf("a user without permissions: %+v", c.Status)
	}

	// A kubeconfig whose user logs in by running a program.
	cfg, err := clientcmd.Load(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		u.ClientCertificateData, u.ClientKeyData, u.Token = nil, nil, ""
		// Were it run, it would leave a file behind.
		u.Exec = &clientcmdapi.ExecConfig{Command: "touch", Args: []string{filepath.Join(dataDir, "ran")}, APIVersion: "client.authentication.k8s.io/v1"}
	}
	execKC := filepath.Join(t.TempDir(), "exec")
	b, _ := clientcmd.Write(*cfg)
	if err := os.WriteFile(execKC, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cl.fails(`runs the program "touch" to log in`, "cluster", "add", "sneaky", "--kubeconfig", execKC)
	if _, err := os.Stat(filepath.Join(dataDir, "ran")); err == nil {
		t.Fatal("the server ran the kubeconfig's login program")
	}

	out := cl.ok("get", "clusters")
	for _, want := range []string{"lab", "Ready", "weak", "Forbidden", "v1.34.2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get clusters lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sneaky") {
		t.Fatalf("a refused cluster was stored:\n%s", out)
	}
	// The kubeconfig is never shown, and is sealed at rest.
	raw := cl.ok("-o", "json", "get", "clusters")
	key := clientKey(t, admin)
	if strings.Contains(raw, "kubeconfig") || strings.Contains(raw, key) {
		t.Fatalf("the cluster list shows the kubeconfig:\n%s", raw)
	}
	db, err := os.ReadFile(filepath.Join(dataDir, "chaindock.db"))
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(filepath.Join(dataDir, "chaindock.db-wal"))
	if bytes.Contains(append(db, wal...), []byte(key)) {
		t.Fatal("the kubeconfig's client key is in the store in the clear")
	}

	if err := json.Unmarshal([]byte(cl.ok("-o", "json", "cluster", "check", "lab")), &c); err != nil || c.Status.Phase != clusters.PhaseReady {
		t.Fatalf("check again: %+v %v", c, err)
	}
	cl.ok("cluster", "remove", "weak")
	cl.fails("not found", "cluster", "check", "weak")
}

// clientKey is a line of the kubeconfig's client key, as it is stored.
func clientKey(t *testing.T, kubeconfig []byte) string {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		if len(u.ClientKeyData) > 0 {
			raw, _ := clientcmd.Write(*cfg)
			for _, line := range strings.Split(string(raw), "\n") {
				if strings.Contains(line, "client-key-data:") {
					return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "client-key-data:"))[:40]
				}
			}
		}
	}
	t.Fatal("the kubeconfig has no client key")
	return ""
}

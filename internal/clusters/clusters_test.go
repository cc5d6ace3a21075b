package clusters

import (
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/chaindock/chaindock/internal/runtime/kubernetes/kubetest"
)

func kubeconfig(t *testing.T, mutate func(*clientcmdapi.Config)) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443", CertificateAuthorityData: []byte("ca")}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t0ken"}
	cfg.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "ctx"
	if mutate != nil {
		mutate(cfg)
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigRefusesWhatTheServerMustNotDo(t *testing.T) {
	if _, ctx, errs := Config(kubeconfig(t, func(c *clientcmdapi.Config) { c.Clusters["c"].CertificateAuthorityData = nil }), ""); len(errs) > 0 || ctx != "ctx" {
		t.Fatalf("a plain kubeconfig: context %q, %v", ctx, errs)
	}
	for _, c := range []struct {
		name string
		kc   []byte
		ctx  string
		want string
	}{
		{"empty", nil, "", "kubeconfig: is empty"},
		{"garbage", []byte("{{{"), "", "is not a kubeconfig"},
		{"no such context", kubeconfig(t, nil), "prod", `context: "prod" is not a context of the kubeconfig (it has ctx)`},
		{"exec plugin", kubeconfig(t, func(c *clientcmdapi.Config) {
			c.AuthInfos["u"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "aws", APIVersion: "client.authentication.k8s.io/v1"}}
		}), "", `runs the program "aws" to log in`},
		{"token file", kubeconfig(t, func(c *clientcmdapi.Config) {
			c.AuthInfos["u"] = &clientcmdapi.AuthInfo{TokenFile: "/etc/shadow"}
		}), "", "reads its token from the file /etc/shadow"},
		{"CA file", kubeconfig(t, func(c *clientcmdapi.Config) {
			c.Clusters["c"].CertificateAuthorityData, c.Clusters["c"].CertificateAuthority = nil, "/root/ca.crt"
		}), "", "reads its CA from the file /root/ca.crt"},
		{"no credentials", kubeconfig(t, func(c *clientcmdapi.Config) { c.AuthInfos["u"] = &clientcmdapi.AuthInfo{} }), "", "has no credentials"},
		{"too big", make([]byte, MaxKubeconfigBytes+1), "", "at most"},
		{"bad CA", kubeconfig(t, nil), "", "its certificates or keys do not load"},
	} {
		_, _, errs := Config(c.kc, c.ctx)
		if len(errs) == 0 || !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, errs, c.want)
		}
	}
}

// TestCheckAgainstARealAPIServer checks an administrator's kubeconfig
// (Ready), a user's without permissions (Forbidden, naming what is
// missing) and a server that does not answer (Unreachable).
func TestCheckAgainstARealAPIServer(t *testing.T) {
	c := kubetest.Start(t, 0)
	ctx := t.Context()
	admin, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, errs := Config(admin, "")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st := Check(ctx, rc, time.Now())
	if st.Phase != PhaseReady || !strings.HasPrefix(st.Version, "v1.34") || len(st.Missing) != 0 {
		t.Fatalf("administrator: %+v", st)
	}

	rc, _, errs = Config(c.UserKubeconfig(t, "nobody"), "")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st = Check(ctx, rc, time.Now())
	if st.Phase != PhaseForbidden || len(st.Missing) != len(Permissions) || !strings.Contains(strings.Join(st.Missing, ","), "create statefulsets.apps") {
		t.Fatalf("a user without permissions: %+v", st)
	}

	cfg, err := clientcmd.Load(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range cfg.Clusters {
		cl.Server = "https://127.0.0.1:1"
	}
	down, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, errs = Config(down, "")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if st = Check(ctx, rc, time.Now()); st.Phase != PhaseUnreachable || !strings.Contains(st.Message, "127.0.0.1:1") {
		t.Fatalf("a server that does not answer: %+v", st)
	}
}

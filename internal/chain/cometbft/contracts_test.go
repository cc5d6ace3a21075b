package cometbft

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/pkg/apptx"
)

var reg = apis.Registries{Chains: []string{"cometbft"}, Runtimes: []string{"process"}}

func TestTemplatesAreValid(t *testing.T) {
	d := New()
	tpl := d.Templates()
	if len(tpl) != len(apptx.Modules()) {
		t.Fatalf("%d templates for %d modules", len(tpl), len(apptx.Modules()))
	}
	for _, p := range tpl {
		if errs := apis.ValidatePackage(&p, reg); len(errs) > 0 {
			t.Errorf("template %s: %v", p.Ref(), errs)
		}
		if errs := d.ValidatePackage(&p); len(errs) > 0 {
			t.Errorf("template %s: %v", p.Ref(), errs)
		}
		if p.Checksum != p.Digest() || !p.Builtin || p.Owner != apis.BuiltinOwner || p.Description == "" {
			t.Errorf("template %s: checksum %s digest %s builtin %v owner %s description %q", p.Ref(), p.Checksum, p.Digest(), p.Builtin, p.Owner, p.Description)
		}
	}
}

func TestValidatePackage(t *testing.T) {
	d := New()
	for _, tc := range []struct {
		name  string
		kind  string
		files []apis.PackageFile
		want  []string
	}{
		{"wrong kind", "evm", []apis.PackageFile{{Path: ModuleFile, Text: `{"module":"notary","version":"1.0.0"}`}}, []string{"kind: \"evm\""}},
		{"no manifest", PackageKind, []apis.PackageFile{{Path: "README.md", Text: "x"}}, []string{"files: has no module.json"}},
		{"bad JSON", PackageKind, []apis.PackageFile{{Path: ModuleFile, Text: `{`}}, []string{"files[module.json]: is not valid JSON"}},
		{"unknown module", PackageKind, []apis.PackageFile{{Path: ModuleFile, Text: `{"module":"bank","version":"1.0.0"}`}}, []string{`files[module.json].module: unknown module "bank"`}},
		{"no version", PackageKind, []apis.PackageFile{{Path: ModuleFile, Text: `{"module":"asset"}`}}, []string{"files[module.json].version: is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := d.ValidatePackage(&apis.Package{Kind: tc.kind, Files: tc.files})
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %v", errs, tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestTxContract(t *testing.T) {
	d := New()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	n := &apis.Network{Spec: apis.NetworkSpec{Chain: "cometbft", CometBFT: &apis.CometBFTSpec{App: AppChainDock}}}
	tx := apptx.Notarize("c", pub, 1, strings.Repeat("ab", 32), nil, nil)
	if err := apptx.Sign(tx, priv); err != nil {
		t.Fatal(err)
	}
	bz, err := apptx.Encode(tx)
	if err != nil {
		t.Fatal(err)
	}
	if ref, ok := d.TxContract(n, bz); !ok || ref != "module/notary" {
		t.Fatalf("TxContract(notarize) = %q, %v", ref, ok)
	}
	if _, ok := d.TxContract(n, []byte("key=value")); ok {
		t.Fatal("a malformed transaction was given a contract")
	}
	n.Spec.CometBFT.App = AppKVStore
	if _, ok := d.TxContract(n, bz); ok {
		t.Fatal("a kvstore network was given a contract")
	}
}

package apis

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var testRegistries = Registries{Chains: []string{"cometbft"}, Runtimes: []string{"process"}}

// TestFixtures checks every testdata/*.good.yaml validates and every
// *.bad.yaml fails with exactly the errors its "# want:" lines list.
func TestFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			var got []string
			if _, err := DecodeAndValidate(data, testRegistries, nil); err != nil {
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("want an ErrorList, got %T %v", err, err)
				}
				for _, e := range list {
					got = append(got, e.Error())
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			good := strings.HasSuffix(path, ".good.yaml")
			if good && len(got) > 0 {
				t.Fatalf("a good spec has errors: %q", got)
			}
			if !good && len(want) == 0 {
				t.Fatal("a bad fixture must list its errors in # want: lines")
			}
			if !slices.Equal(got, want) {
				t.Fatalf("errors differ\n got: %q\nwant: %q", got, want)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	s := NetworkSpec{Validators: 2, FullNodes: 1, Resources: Resources{CPU: "1"}}
	var names []string
	for _, n := range s.Nodes() {
		names = append(names, n.Name+"/"+n.Role+"/"+n.Resources.CPU)
	}
	if strings.Join(names, " ") != "validator-0/validator/1 validator-1/validator/1 full-0/full/1" {
		t.Fatalf("nodes: %v", names)
	}
	s = NetworkSpec{Resources: Resources{CPU: "1"}, Organizations: []OrganizationNodes{
		{Name: "a", Validators: 1, FullNodes: 1},
		{Name: "b", Validators: 1, Resources: Resources{CPU: "2"}},
	}}
	names = nil
	for _, n := range s.Nodes() {
		names = append(names, n.Name+"/"+n.Organization+"/"+n.Resources.CPU)
	}
	if strings.Join(names, " ") != "a-validator-0/a/1 b-validator-0/b/2 a-full-0/a/1" {
		t.Fatalf("nodes with organizations: %v", names)
	}
}

func TestDefaults(t *testing.T) {
	n := &Network{}
	SetDefaults(n)
	if n.Spec.Consensus.TimeoutCommit.String() != "1s" || n.Spec.Consensus.TimeoutPropose.String() != "3s" || !*n.Spec.Consensus.CreateEmptyBlocks {
		t.Fatalf("defaults: %+v", n.Spec.Consensus)
	}
	f := false
	n = &Network{Spec: NetworkSpec{Consensus: Consensus{CreateEmptyBlocks: &f}}}
	SetDefaults(n)
	if *n.Spec.Consensus.CreateEmptyBlocks {
		t.Fatal("an explicit false was overwritten")
	}
}

func FuzzDecodeNetwork(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := DecodeNetwork(data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("decode returned %T, want ErrorList", err)
			}
			return
		}
		_ = ValidateNetwork(n, testRegistries)
		_ = n.Spec.Nodes()
	})
}

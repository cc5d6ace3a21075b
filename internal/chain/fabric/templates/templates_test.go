package templates

import (
	"slices"
	"strings"
	"testing"
)

// The contract API checks a contract's functions and types when it builds
// the chaincode: each template must pass.
func TestNew(t *testing.T) {
	if want := []string{"asset", "notary"}; !slices.Equal(Names(), want) {
		t.Errorf("Names() = %q, want %q", Names(), want)
	}
	for _, name := range Names() {
		cc, err := New(name)
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		if cc.DefaultContract != name {
			t.Errorf("New(%q): default contract %q", name, cc.DefaultContract)
		}
	}
	if _, err := New("erc20"); err == nil || !strings.Contains(err.Error(), "templates: asset, notary") {
		t.Errorf("New of an unknown template: %v", err)
	}
}

package registry

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := New[int]("thing")
	r.Register("b", 2)
	r.Register("a", 1)
	if v, err := r.Get("a"); err != nil || v != 1 {
		t.Fatalf("get a: %v %v", v, err)
	}
	if _, err := r.Get("c"); err == nil || !strings.Contains(err.Error(), `unknown thing "c"`) {
		t.Fatalf("get c: %v", err)
	}
	if got := strings.Join(r.Names(), ","); got != "a,b" {
		t.Fatalf("names: %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a duplicate registration did not panic")
		}
	}()
	r.Register("a", 3)
}

package fabric

import (
	"slices"
	"strings"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
)

// TestChannelLedgers: the driver names the plan's channels besides the
// shared one, and a channel's ledger reads from its members' peers only:
// another organisation's peer is refused before it is dialled.
func TestChannelLedgers(t *testing.T) {
	n := decode(t, "two-orgs.good.yaml")
	d := New()
	if got := d.Channels(planNetwork(t, n)); len(got) != 0 {
		t.Errorf("channels of a network of one: %v", got)
	}
	n.Spec.Fabric.Channels = []apis.FabricChannel{{Name: "solo", Organizations: []string{"org2"}}}
	p := planNetwork(t, n)
	if got := d.Channels(p); !slices.Equal(got, []string{"solo"}) {
		t.Fatalf("channels: %v, want solo", got)
	}
	for _, ch := range []string{"", p.ChainID, "nowhere"} {
		if _, err := d.ChannelLedger(p, ch); err == nil {
			t.Errorf("ledger of channel %q made, want refused", ch)
		}
	}
	l, err := d.ChannelLedger(p, "solo")
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	for _, pn := range p.Nodes {
		_, err := l.LatestHeight(t.Context(), pn)
		switch {
		case pn.Role == apis.RoleFull && pn.Organization == "org2":
			// Dialled: nothing listens on the planned port.
			asked = append(asked, pn.Name)
			if err == nil {
				t.Errorf("%s answered with no peer running", pn.Name)
			}
		case err == nil:
			t.Errorf("%s read channel solo", pn.Name)
		case pn.Role == apis.RoleFull && !strings.Contains(err.Error(), "organisation org1 is no member of channel solo"):
			t.Errorf("%s: %v; want no member of solo", pn.Name, err)
		}
	}
	if len(asked) == 0 {
		t.Error("no peer of org2 in the plan")
	}
}

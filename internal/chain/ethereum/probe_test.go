package ethereum

import (
	"encoding/json"
	"testing"
)

func TestCatchingUp(t *testing.T) {
	for _, c := range []struct {
		syncing string
		want    bool
	}{
		{`false`, false},
		// geth at genesis, waiting for a block to index.
		{`{"currentBlock":"0x0","highestBlock":"0x0","startingBlock":"0x0","txIndexFinishedBlocks":"0x0","txIndexRemainingBlocks":"0x1"}`, false},
		{`{"currentBlock":"0x5","highestBlock":"0x40","startingBlock":"0x0"}`, true},
		{`"garbled"`, true},
	} {
		if got := catchingUp(json.RawMessage(c.syncing)); got != c.want {
			t.Errorf("catchingUp(%s) = %v, want %v", c.syncing, got, c.want)
		}
	}
}

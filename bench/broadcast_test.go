package bench

import (
	"bytes"
	"strings"
	"testing"
)

// TestBroadcastScenarioTiny: the broadcast scenario against a real chatd
// at a tiny size: 300 users, 40 online, 3 broadcasts; every online client
// gets each one, the figures are filled and the table prints them.
func TestBroadcastScenarioTiny(t *testing.T) {
	srv := startChatd(t)
	o := srv.options()
	rep := runScenario(t, o, &Broadcast{Users: 300, Online: 40, Count: 3, DataDir: srv.data})
	b := rep.Broadcast
	if b == nil {
		t.Fatal("no broadcast report")
	}
	if b.Online != 40 || b.Expected != 120 || b.Delivered != 120 || len(b.AcceptMS) != 3 || len(b.DeliveriesPerS) != 3 {
		t.Fatalf("broadcast report %+v", b)
	}
	for i := range b.AcceptMS {
		if b.AcceptMS[i] <= 0 || b.DeliverMS[i] <= 0 || b.DeliveriesPerS[i] <= 0 || b.ServerOnline[i] != 40 {
			t.Fatalf("broadcast %d figures %+v", i, b)
		}
	}
	if b.DiskBytes < 0 {
		t.Fatalf("disk growth not measured: %d", b.DiskBytes)
	}
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil || !strings.Contains(tab.String(), "broadcast 3") || !strings.Contains(tab.String(), "delivered") {
		t.Fatalf("table: %v\n%s", err, tab.String())
	}
}

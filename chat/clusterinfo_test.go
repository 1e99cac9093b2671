package chat_test

import (
	"context"
	"testing"
	"time"

	"chatd/chat"
)

// TestClusterPeersAndLeases: each of two nodes hears the other (last
// heard on the core's clock, its mirrored connections), and a node that
// goes silent leaves the list once presumed dead; the leases say who
// holds them and whether it is this node.
func TestClusterPeersAndLeases(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	ce.login(a, "alice")
	ce.login(a, "carol")
	ce.login(b, "bob")
	start := ce.clock.now()

	pa, pb := a.core.ClusterPeers(), b.core.ClusterPeers()
	if len(pa) != 1 || pa[0].ID != "b" || pa[0].Conns != 1 || !pa[0].LastHeard.Equal(start.Truncate(time.Millisecond)) {
		t.Fatalf("a hears %+v; want b with 1 connection, heard at %s", pa, start)
	}
	if len(pb) != 1 || pb[0].ID != "a" || pb[0].Conns != 2 {
		t.Fatalf("b hears %+v; want a with 2 connections", pb)
	}

	ctx := context.Background()
	if ok, err := ce.st.TryLease(ctx, "webhooks", "a/tok1", time.Minute); !ok || err != nil {
		t.Fatalf("TryLease: %v %v", ok, err)
	}
	ce.owner("a", "b") // the domains lease is taken by then
	for name, e := range map[string]*env{"a": a, "b": b} {
		ls, err := e.core.ClusterLeases(ctx)
		if err != nil || len(ls) != 2 {
			t.Fatalf("%s: leases %+v, %v", name, ls, err)
		}
		wh, dom := ls[0], ls[1]
		if wh.Name != "webhooks" || wh.Holder != "a/tok1" || wh.HolderNode() != "a" || wh.Left <= 0 || wh.Here != (name == "a") {
			t.Errorf("%s: webhooks lease %+v; want held by a/tok1, here on a only", name, wh)
		}
		// One of the two nodes owns the domains (owner.go): the lease
		// names it, and only that node says it holds it.
		owner := dom.HolderNode()
		if dom.Name != "domains" || (owner != "a" && owner != "b") || dom.Here != (owner == name) {
			t.Errorf("%s: domains lease %+v; want held by a or b, here on its holder only", name, dom)
		}
	}

	// b goes silent: after 3 s a presumes it dead and no longer lists it.
	ce.hub.cut("b")
	ce.clock.add(3500 * time.Millisecond)
	a.core.ClusterTickForTest()
	ce.hub.flush()
	if pa := a.core.ClusterPeers(); len(pa) != 0 {
		t.Fatalf("a still hears %+v after b went silent", pa)
	}
}

// A single node has no cluster to show.
func TestClusterInfoSingleNode(t *testing.T) {
	e := newEnv(t, chat.Config{})
	if p := e.core.ClusterPeers(); p != nil {
		t.Fatalf("ClusterPeers on a single node: %+v", p)
	}
	if ls, err := e.core.ClusterLeases(context.Background()); ls != nil || err != nil {
		t.Fatalf("ClusterLeases on a single node: %+v, %v", ls, err)
	}
}

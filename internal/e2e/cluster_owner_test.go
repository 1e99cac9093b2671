//go:build linux

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/httpapi/apiclient"
	"chatd/internal/testpg"
)

// TestClusterServiceClaims: three real nodes, one of which owns customer
// service (the "domains" lease, docs/cluster.md): a shop with an agent on
// each node, customers opening conversations through every node, and the
// three agents claiming each conversation at once. Each is assigned
// exactly once — one claim succeeds, the others are told it is already
// assigned — as the store (the host API) and the agents' events say; a
// customer's message then reaches the agent on whatever node.
func TestClusterServiceClaims(t *testing.T) {
	dsn := testpg.Start(t).NewDatabase(t)
	nodes := startCluster(t, dsn, []string{"n1", "n2", "n3"})
	app := nodes[0].app("shop")
	clusterReady(t, nodes, app, "shop")

	// The host API is not forwarded to the owner here: it is the node
	// whose shop_put is not refused `unavailable` (its writes name the
	// lease it holds).
	var host *apiclient.Client
	deadline := time.Now().Add(20 * time.Second)
	for host == nil {
		for _, p := range nodes {
			a := appOn(p, app)
			err := a.Do(context.Background(), "POST", "/api/v1/service", json.RawMessage(`{"action":"shop_put","shop":"desk","settings":{"strategy":"manual"}}`), nil)
			if err == nil {
				host = a
				break
			}
			if ae, ok := err.(*apiclient.APIError); !ok || ae.Code != "unavailable" {
				t.Fatalf("shop_put on %s: %v", p.httpAddr, err)
			}
		}
		if host == nil && time.Now().After(deadline) {
			t.Fatal("no node took the domains lease in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	agents := make([]*client, 3)
	for i, p := range nodes {
		uid := fmt.Sprintf("agent%d", i+1)
		tok := pushUser(t, app, uid)
		svcHost(t, host, fmt.Sprintf(`{"action":"agent_put","shop":"desk","uid":%q,"capacity":10,"status":"online"}`, uid), nil)
		agents[i] = login(t, p.wsAddr, "shop", tok)
	}
	type conv struct {
		sid  uint64
		cust *client
	}
	var convs []conv
	for i := range 6 {
		cust := login(t, nodes[i%3].wsAddr, "shop", pushUser(t, app, fmt.Sprintf("cust%d", i)))
		r := cust.do(`"action":"service_open","shop":"desk"`)
		if !r.OK {
			t.Fatalf("service_open on n%d: %s", i%3+1, r.raw)
		}
		v := decode[svcConv](t, r)
		if v.Status != "queued" {
			t.Fatalf("cust%d: %+v, want queued (a manual shop)", i, v)
		}
		convs = append(convs, conv{v.Session, cust})
	}

	winner := map[uint64]string{}
	for _, cv := range convs {
		var wg sync.WaitGroup
		replies := make([]frame, 3)
		for i, a := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("claim%d", cv.sid)
				a.send(fmt.Sprintf(`{"id":%q,"action":"service_claim","session_id":%d}`, id, cv.sid))
				replies[i] = a.waitReply(id)
			}()
		}
		wg.Wait()
		for i, r := range replies {
			switch {
			case r.OK && winner[cv.sid] != "":
				t.Fatalf("conversation %d claimed by %s and agent%d", cv.sid, winner[cv.sid], i+1)
			case r.OK:
				winner[cv.sid] = fmt.Sprintf("agent%d", i+1)
			case r.Error == nil || r.Error.Code != "conflict" || !strings.Contains(r.Error.Message, "already assigned"):
				t.Fatalf("agent%d's claim of %d: %s, want ok or conflict already assigned", i+1, cv.sid, r.raw)
			}
		}
		if winner[cv.sid] == "" {
			t.Fatalf("nobody claimed conversation %d", cv.sid)
		}
	}

	// The store agrees.
	var list []svcConv
	svcHost(t, host, `{"action":"conversations","shop":"desk"}`, &list)
	if len(list) != len(convs) {
		t.Fatalf("stored %d conversations, want %d", len(list), len(convs))
	}
	for _, v := range list {
		if v.Status != "open" || v.Agent != winner[v.Session] {
			t.Fatalf("stored %+v, want open with %s", v, winner[v.Session])
		}
	}
	// Every agent heard each claim once, and the customer was told once.
	for i, a := range agents {
		seen := map[uint64]int{}
		for range convs {
			ev := nextService(t, a, "claimed")
			seen[ev.Session]++
			if ev.Agent != winner[ev.Session] {
				t.Fatalf("agent%d told %d was claimed by %s, want %s", i+1, ev.Session, ev.Agent, winner[ev.Session])
			}
		}
		for _, cv := range convs {
			if seen[cv.sid] != 1 {
				t.Fatalf("agent%d told %d times that %d was claimed", i+1, seen[cv.sid], cv.sid)
			}
		}
	}
	for _, cv := range convs {
		if ev := nextService(t, cv.cust, "claimed"); ev.Agent != winner[cv.sid] {
			t.Fatalf("the customer of %d told %+v", cv.sid, ev)
		}
	}
	// A customer's message reaches the agent who claimed it, wherever
	// both are; the customer's send went through the owner if theirs is
	// another node.
	for _, cv := range convs {
		text := fmt.Sprintf("hello %d", cv.sid)
		if r := cv.cust.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":%q}`, cv.sid, text)); !r.OK {
			t.Fatalf("send: %s", r.raw)
		}
		var to *client
		for i, a := range agents {
			if winner[cv.sid] == fmt.Sprintf("agent%d", i+1) {
				to = a
			}
		}
		if !waitMessage(to, text, 10*time.Second) {
			t.Fatalf("%s did not get %q", winner[cv.sid], text)
		}
	}
	for _, a := range agents {
		a.quiet("message", 200*time.Millisecond) // each message once
	}
}

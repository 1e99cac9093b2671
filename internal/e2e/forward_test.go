//go:build linux

package e2e_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/httpapi/apiclient"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

// Host calls forwarded to a lease's holder (docs/cluster.md, "Forwarding
// host calls") between real chatd processes: every node runs the owner
// loop and one takes the "domains" lease (whichever was first); a
// customer-service call sent to each of the two others runs on it; a
// redelivery sent to a node without the "webhooks" lease runs on its
// holder; with the domains' owner killed, a call through another node
// answers 503 naming it.
func TestClusterForwarding(t *testing.T) {
	dsn := testpg.Start(t).NewDatabase(t)
	ids := []string{"n1", "n2", "n3"}
	nodes := startCluster(t, dsn, ids)
	app := nodes[0].app("shop")
	clusterReady(t, nodes, app, "shop")
	ctx := context.Background()
	st, err := pgstore.OpenShared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// The owner: the node the lease names, once it has loaded (a call
	// sent to it is served, not refused unavailable).
	owner := -1
	deadline := time.Now().Add(20 * time.Second)
	for owner < 0 {
		if l, err := st.Lease(ctx, "domains"); err == nil && l.Live() {
			for i, p := range nodes {
				if strings.HasPrefix(l.Holder, ids[i]+"/") &&
					appOn(p, app).Do(ctx, "POST", "/api/v1/service", map[string]string{"action": "shops"}, nil) == nil {
					owner = i
				}
			}
		}
		if owner < 0 {
			if time.Now().After(deadline) {
				t.Fatal("no node owns the domains (holds the lease and serves a call) after 20s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	o1, o2 := (owner+1)%3, (owner+2)%3 // the two others

	var shop map[string]any
	if err := appOn(nodes[o2], app).Do(ctx, "POST", "/api/v1/service", map[string]string{"action": "shop_put", "shop": "acme", "name": "ACME"}, &shop); err != nil {
		t.Fatalf("shop_put through %s: %v", ids[o2], err)
	}
	var shops []map[string]any
	if err := appOn(nodes[o1], app).Do(ctx, "POST", "/api/v1/service", map[string]string{"action": "shops"}, &shops); err != nil || len(shops) != 1 || shops[0]["id"] != "acme" {
		t.Fatalf("shops through %s: %v %v", ids[o1], shops, err)
	}
	for i, want := range map[int]string{owner: `served"} 2`, o1: `sent"} 1`, o2: `sent"} 1`} {
		if m := metricsOf(t, nodes[i]); !strings.Contains(m, `chatd_http_forwarded_total{way="`+want) {
			t.Errorf("%s's forwarded calls, want %s:\n%s", ids[i], want, grepLines(m, "chatd_http_forwarded_total"))
		}
	}

	// The webhooks lease: whoever took it serves a redelivery sent to
	// another node (an unknown delivery: the holder's 404, where a node
	// without the dispatcher would answer 503).
	l, err := st.Lease(ctx, "webhooks")
	if err != nil || !l.Live() {
		t.Fatalf("webhooks lease %+v %v", l, err)
	}
	other := nodes[0]
	if strings.HasPrefix(l.Holder, "n1/") {
		other = nodes[1]
	}
	err = appOn(other, app).Do(ctx, "POST", "/api/v1/webhooks/redeliver", map[string]any{"delivery_ids": []string{"1.nope"}}, nil)
	if ae, ok := err.(*apiclient.APIError); !ok || ae.Status != 404 || !strings.Contains(ae.Message, "no delivery") {
		t.Fatalf("redelivery through a node without the lease (holder %s): %v", l.Holder, err)
	}

	// Killed, the owner stops renewing the lease, which names it for up
	// to 5 s more; it is presumed dead after 3 s without a heartbeat, and
	// a call waiting on it fails then.
	nodes[owner].kill9()
	err = appOn(nodes[o1], app).Do(ctx, "POST", "/api/v1/service", map[string]string{"action": "shops"}, nil)
	if ae, ok := err.(*apiclient.APIError); !ok || ae.Status != 503 || ae.Code != "unavailable" ||
		!strings.Contains(ae.Message, "node "+ids[owner]+` (the holder of the "domains" lease)`) {
		t.Fatalf("through %s with the owner %s dead: %v", ids[o1], ids[owner], err)
	}
}

// metricsOf is node p's /metrics.
func metricsOf(t *testing.T, p *chatdProc) string {
	t.Helper()
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

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
// host calls") between real chatd processes: a customer-service call
// sent to n2 and n3 runs on n1, which holds the "domains" lease; a
// redelivery sent to a node without the "webhooks" lease runs on its
// holder; with n1 killed, a call through n2 answers 503 naming n1.
func TestClusterForwarding(t *testing.T) {
	dsn := testpg.Start(t).NewDatabase(t)
	nodes := startCluster(t, dsn, []string{"n1", "n2", "n3"})
	app := nodes[0].app("shop")
	clusterReady(t, nodes, app, "shop")
	ctx := context.Background()
	st, err := pgstore.OpenShared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ok, err := st.TryLease(ctx, "domains", "n1/e2e", time.Hour); err != nil || !ok {
		t.Fatalf("the domains lease for n1: %v %v", ok, err)
	}

	var shop map[string]any
	if err := appOn(nodes[2], app).Do(ctx, "POST", "/api/v1/service", map[string]string{"action": "shop_put", "shop": "acme", "name": "ACME"}, &shop); err != nil {
		t.Fatalf("shop_put through n3: %v", err)
	}
	var shops []map[string]any
	if err := appOn(nodes[1], app).Do(ctx, "POST", "/api/v1/service", map[string]string{"action": "shops"}, &shops); err != nil || len(shops) != 1 || shops[0]["id"] != "acme" {
		t.Fatalf("shops through n2: %v %v", shops, err)
	}
	for i, want := range []string{`served"} 2`, `sent"} 1`, `sent"} 1`} {
		if m := metricsOf(t, nodes[i]); !strings.Contains(m, `chatd_http_forwarded_total{way="`+want) {
			t.Errorf("n%d's forwarded calls, want %s:\n%s", i+1, want, grepLines(m, "chatd_http_forwarded_total"))
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

	nodes[0].kill9()
	err = appOn(nodes[1], app).Do(ctx, "POST", "/api/v1/service", map[string]string{"action": "shops"}, nil)
	if ae, ok := err.(*apiclient.APIError); !ok || ae.Status != 503 || ae.Code != "unavailable" || !strings.Contains(ae.Message, `node n1 (the holder of the "domains" lease)`) {
		t.Fatalf("through n2 with n1 dead: %v", err)
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

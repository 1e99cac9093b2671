//go:build linux

package e2e_test

import (
	"context"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// checkClusterStatus: on a ready cluster, every node's status answer,
// `chatd status` and /metrics show the other nodes it hears, its routes,
// and the webhooks lease held by exactly one of them (docs/cluster.md,
// Seeing the cluster).
func checkClusterStatus(t *testing.T, nodes []*chatdProc, ids []string) {
	t.Helper()
	ctx := context.Background()
	// The webhook lease is taken within a second of the start; wait for
	// a holder.
	deadline := time.Now().Add(20 * time.Second)
	for {
		here := 0
		for _, p := range nodes {
			st, err := p.admin.Status(ctx)
			if err != nil || st.Cluster == nil {
				t.Fatalf("status: %+v, %v", st, err)
			}
			for _, l := range st.Cluster.Leases {
				if l.Name == "webhooks" && l.Here {
					here++
				}
			}
		}
		if here == 1 {
			break
		}
		if here > 1 || time.Now().After(deadline) {
			t.Fatalf("%d nodes say they hold the webhooks lease, want 1", here)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, p := range nodes {
		st, err := p.admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cs := st.Cluster
		if cs.Node != ids[i] || cs.NATS != "embedded" || cs.Routes != len(nodes)-1 || len(cs.Nodes) != len(nodes)-1 || cs.LeaseError != "" {
			t.Fatalf("%s's cluster status: %+v", ids[i], cs)
		}
		k := 0
		for j, id := range ids {
			if j == i {
				continue
			}
			if n := cs.Nodes[k]; n.ID != id || n.LastHeardAgoMS > 3000 || n.LastHeard == 0 {
				t.Fatalf("%s hears %+v, want %s heard within 3 s", ids[i], n, id)
			}
			k++
		}
		if len(cs.Leases) != 2 || cs.Leases[0].Name != "webhooks" || cs.Leases[0].Holder == "" || cs.Leases[1].Name != "domains" {
			t.Fatalf("%s's leases: %+v", ids[i], cs.Leases)
		}

		out, err := exec.Command(chatdBinary(t), "status", "--data", p.dir, "--admin-key", binAdminKey).CombinedOutput()
		if err != nil {
			t.Fatalf("chatd status: %v\n%s", err, out)
		}
		for _, re := range []string{
			`(?m)^  cluster +chatd, node ` + ids[i] + ` \(embedded NATS, 2 routes\)$`,
			`(?m)^  nodes heard +\S+: heard \S+ ago, \d+ connections$`,
			`(?m)^  leases +webhooks: held (here|by \S+) \(\S+/\S+, \S+ left\)$`,
			`(?m)^ +domains: `,
		} {
			if !regexp.MustCompile(re).Match(out) {
				t.Fatalf("chatd status of %s lacks %s:\n%s", ids[i], re, out)
			}
		}
		if v := metric(t, p.httpAddr, "chatd_cluster_routes"); v != "2" {
			t.Fatalf("%s: chatd_cluster_routes %s", ids[i], v)
		}
		if v := metric(t, p.httpAddr, "chatd_cluster_nodes"); v != "2" {
			t.Fatalf("%s: chatd_cluster_nodes %s", ids[i], v)
		}
		for _, id := range ids {
			if id != ids[i] {
				metric(t, p.httpAddr, `chatd_cluster_node_last_heard_seconds{node="`+id+`"}`)
				metric(t, p.httpAddr, `chatd_cluster_node_connections{node="`+id+`"}`)
			}
		}
		want := "0"
		if cs.Leases[0].Here {
			want = "1"
		}
		if v := metric(t, p.httpAddr, `chatd_cluster_lease_held{lease="webhooks"}`); v != want {
			t.Fatalf("%s: chatd_cluster_lease_held{lease=\"webhooks\"} %s, status says here=%v", ids[i], v, cs.Leases[0].Here)
		}
		metric(t, p.httpAddr, `chatd_cluster_lease_held{lease="domains"}`)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"chatd/httpapi"
	"chatd/httpapi/apiclient"
	"chatd/internal/config"
	"chatd/internal/metrics"
)

// leaseReadTimeout bounds reading the leases from the database for a
// status answer or a metrics scrape.
const leaseReadTimeout = 2 * time.Second

// clusterStatus is the status answer's cluster part; nil on a single node.
func (s *server) clusterStatus(cfg *config.Config) *httpapi.ClusterStatus {
	if s.broker == nil {
		return nil
	}
	cs := &httpapi.ClusterStatus{Node: cfg.ClusterNode, Name: cfg.ClusterName, NATS: "embedded",
		Routes: s.broker.Routes(), Nodes: []httpapi.ClusterNodeStatus{}, Leases: []httpapi.ClusterLeaseStatus{}}
	if cfg.NATSURL != "" {
		cs.NATS = "external"
	}
	now := time.Now()
	for _, p := range s.core.ClusterPeers() {
		cs.Nodes = append(cs.Nodes, httpapi.ClusterNodeStatus{ID: p.ID, LastHeard: p.LastHeard.UnixMilli(),
			LastHeardAgoMS: now.Sub(p.LastHeard).Milliseconds(), Conns: p.Conns})
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseReadTimeout)
	defer cancel()
	ls, err := s.core.ClusterLeases(ctx)
	if err != nil {
		cs.LeaseError = err.Error()
	}
	for _, l := range ls {
		cs.Leases = append(cs.Leases, httpapi.ClusterLeaseStatus{Name: l.Name, Holder: l.Holder,
			LeftMS: l.Left.Milliseconds(), Here: l.Here})
	}
	return cs
}

// writeClusterMetrics writes the chatd_cluster_* families on a node of a
// cluster (nothing on a single node).
func (s *server) writeClusterMetrics(w *metrics.Writer) {
	if s.broker == nil {
		return
	}
	peers := s.core.ClusterPeers()
	w.Gauge("chatd_cluster_nodes", "Other nodes of the cluster this node hears (heard within the last 3 s).", float64(len(peers)))
	w.Gauge("chatd_cluster_routes", "Routes of the embedded NATS server to other servers (0 with an external NATS).", float64(s.broker.Routes()))
	now := time.Now()
	if w.Family("chatd_cluster_node_last_heard_seconds", metrics.Gauge, "Seconds since this node last heard another node (a heartbeat comes every second).") {
		for _, p := range peers {
			w.Sample(now.Sub(p.LastHeard).Seconds(), metrics.Label{Name: "node", Value: p.ID})
		}
	}
	if w.Family("chatd_cluster_node_connections", metrics.Gauge, "Connections of another node that this node mirrors.") {
		for _, p := range peers {
			w.Sample(float64(p.Conns), metrics.Label{Name: "node", Value: p.ID})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseReadTimeout)
	defer cancel()
	ls, err := s.core.ClusterLeases(ctx)
	if err != nil {
		return // the family is left out: unknown, not "not held"
	}
	if w.Family("chatd_cluster_lease_held", metrics.Gauge, "1 while this node holds the lease (webhooks: the webhook dispatcher; domains: customer service and consultations).") {
		for _, l := range ls {
			v := 0.0
			if l.Here {
				v = 1
			}
			w.Sample(v, metrics.Label{Name: "lease", Value: l.Name})
		}
	}
}

// printClusterStatus is `chatd status`'s cluster part.
func printClusterStatus(w io.Writer, cs *apiclient.ClusterStatus) {
	routes := fmt.Sprintf("embedded NATS, %d routes", cs.Routes)
	if cs.Routes == 1 {
		routes = "embedded NATS, 1 route"
	}
	if cs.NATS == "external" {
		routes = "external NATS"
	}
	fmt.Fprintf(w, "  cluster       %s, node %s (%s)\n", cs.Name, cs.Node, routes)
	if len(cs.Nodes) == 0 {
		fmt.Fprintf(w, "  nodes heard   none\n")
	}
	for i, n := range cs.Nodes {
		label := ""
		if i == 0 {
			label = "nodes heard"
		}
		fmt.Fprintf(w, "  %-13s %s: heard %s ago, %d connections\n", label, n.ID,
			(time.Duration(n.LastHeardAgoMS) * time.Millisecond).Round(time.Millisecond), n.Conns)
	}
	if cs.LeaseError != "" {
		fmt.Fprintf(w, "  leases        unknown: %s\n", cs.LeaseError)
	}
	for i, l := range cs.Leases {
		label := ""
		if i == 0 {
			label = "leases"
		}
		left := (time.Duration(l.LeftMS) * time.Millisecond).Round(100 * time.Millisecond)
		switch {
		case l.Holder == "":
			fmt.Fprintf(w, "  %-13s %s: free\n", label, l.Name)
		case l.Here:
			fmt.Fprintf(w, "  %-13s %s: held here (%s, %s left)\n", label, l.Name, l.Holder, left)
		default:
			node, _, _ := strings.Cut(l.Holder, "/")
			fmt.Fprintf(w, "  %-13s %s: held by %s (%s, %s left)\n", label, l.Name, node, l.Holder, left)
		}
	}
}

package httpapi

// ClusterStatus is the cluster part of GET /admin/v1/status, set on a node
// of a cluster (docs/cluster.md, Seeing the cluster).
type ClusterStatus struct {
	Node string `json:"node"` // this node's id (cluster_node)
	Name string `json:"name"` // cluster_name
	// NATS is "embedded" (routes between the nodes' servers) or
	// "external" (nats_url).
	NATS string `json:"nats"`
	// Routes counts the embedded server's routes to other servers (0
	// with an external NATS).
	Routes int `json:"routes"`
	// Nodes are the other nodes this node hears, by id.
	Nodes []ClusterNodeStatus `json:"nodes"`
	// Leases are the cluster's leases (webhooks, domains) as the
	// database has them; LeaseError says why they are missing.
	Leases     []ClusterLeaseStatus `json:"leases"`
	LeaseError string               `json:"lease_error,omitempty"`
}

// ClusterNodeStatus is another node as this node hears it.
type ClusterNodeStatus struct {
	ID             string `json:"id"`
	LastHeard      int64  `json:"last_heard"`        // unix ms
	LastHeardAgoMS int64  `json:"last_heard_ago_ms"` // how long ago
	Conns          int    `json:"conns"`             // its connections this node mirrors
}

// ClusterLeaseStatus is one lease of the cluster.
type ClusterLeaseStatus struct {
	Name   string `json:"name"`
	Holder string `json:"holder"`  // "node/token"; empty: free
	LeftMS int64  `json:"left_ms"` // until it ends unless renewed
	Here   bool   `json:"here"`    // held by this node
}

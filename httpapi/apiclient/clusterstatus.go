package apiclient

// ClusterStatus is Status.Cluster: set on a node of a cluster.
type ClusterStatus struct {
	Node       string               `json:"node"`
	Name       string               `json:"name"`
	NATS       string               `json:"nats"` // embedded or external
	Routes     int                  `json:"routes"`
	Nodes      []ClusterNodeStatus  `json:"nodes"`
	Leases     []ClusterLeaseStatus `json:"leases"`
	LeaseError string               `json:"lease_error,omitempty"`
}

// ClusterNodeStatus is another node as the answering node hears it.
type ClusterNodeStatus struct {
	ID             string `json:"id"`
	LastHeard      int64  `json:"last_heard"` // unix ms
	LastHeardAgoMS int64  `json:"last_heard_ago_ms"`
	Conns          int    `json:"conns"`
}

// ClusterLeaseStatus is one lease of the cluster.
type ClusterLeaseStatus struct {
	Name   string `json:"name"`
	Holder string `json:"holder"` // "node/token"; empty: free
	LeftMS int64  `json:"left_ms"`
	Here   bool   `json:"here"` // held by the answering node
}

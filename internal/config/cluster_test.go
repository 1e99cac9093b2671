package config

import (
	"slices"
	"strings"
	"testing"
)

// The cluster settings: off by default; cluster_node needs a PostgreSQL
// store and exactly one of nats_listen and nats_url; each value is
// checked; nats_url prints as a secret.
func TestClusterSettings(t *testing.T) {
	const pg = "postgres://chatd@db/chat"
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "off by default", check: func(t *testing.T, c *Config) {
			if c.ClusterNode != "" || c.ClusterName != "chatd" || c.NATSListen != "" || c.NATSURL != "" || len(c.NATSRoutes) != 0 {
				t.Fatalf("cluster defaults: %+v", c)
			}
		}},
		{name: "embedded", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", "10.0.0.1:6222", "--nats-routes", "nats://10.0.0.2:6222,10.0.0.3:6222"},
			check: func(t *testing.T, c *Config) {
				if c.ClusterNode != "n1" || c.NATSListen != "10.0.0.1:6222" || !slices.Equal(c.NATSRoutes, []string{"nats://10.0.0.2:6222", "10.0.0.3:6222"}) {
					t.Fatalf("got %q %q %q", c.ClusterNode, c.NATSListen, c.NATSRoutes)
				}
			}},
		{name: "external from the environment", args: []string{"--store", pg}, env: []string{"CHATD_CLUSTER_NODE=n2", "CHATD_NATS_URL=nats://u:secret@nats:4222"},
			check: func(t *testing.T, c *Config) {
				if c.NATSURL != "nats://u:secret@nats:4222" {
					t.Fatalf("nats_url = %q", c.NATSURL)
				}
				if s := lookup("nats_url"); s.Display(c) != "***" {
					t.Fatalf("nats_url displays as %q", s.Display(c))
				}
			}},
		{name: "needs the store", args: []string{"--cluster-node", "n1", "--nats-listen", ":6222"}, wantErr: "cluster_node needs store"},
		{name: "needs nats", args: []string{"--store", pg, "--cluster-node", "n1"}, wantErr: "exactly one of nats_listen"},
		{name: "not both", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", ":6222", "--nats-url", "nats://x:4222"}, wantErr: "exactly one of nats_listen"},
		{name: "routes without embedded", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-url", "nats://x:4222", "--nats-routes", "nats://y:6222"}, wantErr: "nats_routes are for the embedded"},
		{name: "nats without a node", args: []string{"--nats-listen", ":6222"}, wantErr: "need cluster_node"},
		{name: "bad node id", args: []string{"--cluster-node", "n.1"}, wantErr: "letters, digits"},
		{name: "bad route", args: []string{"--nats-routes", "http://x"}, wantErr: "nats://host:port"},
		{name: "bad url", args: []string{"--nats-url", "x:4222"}, wantErr: "nats://host:port"},
		{name: "bad listen", args: []string{"--nats-listen", "6222"}, wantErr: "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld, err := load(t, append([]string{"--data", t.TempDir()}, tt.args...), tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &ld.Config)
		})
	}
}

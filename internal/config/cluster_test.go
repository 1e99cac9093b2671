package config

import (
	"slices"
	"strings"
	"testing"
)

// The cluster settings: off by default; cluster_node needs a PostgreSQL
// store and exactly one of nats_listen and nats_url; each value is
// checked; nats_url and nats_route_secret print as secrets; routes
// listening beyond loopback need a secret or TLS.
func TestClusterSettings(t *testing.T) {
	const pg = "postgres://chatd@db/chat"
	const routeSecret = "8f1c0a6e3b5d47e9a2c4f6081b3d5e7f9a1c3e5f7b9d1f3a"
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
			env: []string{"CHATD_NATS_ROUTE_SECRET=" + routeSecret},
			check: func(t *testing.T, c *Config) {
				if c.ClusterNode != "n1" || c.NATSListen != "10.0.0.1:6222" || !slices.Equal(c.NATSRoutes, []string{"nats://10.0.0.2:6222", "10.0.0.3:6222"}) {
					t.Fatalf("got %q %q %q", c.ClusterNode, c.NATSListen, c.NATSRoutes)
				}
				if c.NATSRouteSecret != routeSecret {
					t.Fatalf("nats_route_secret = %q", c.NATSRouteSecret)
				}
				if s := lookup("nats_route_secret"); s.Display(c) != "***" {
					t.Fatalf("nats_route_secret displays as %q", s.Display(c))
				}
			}},
		{name: "loopback needs no secret", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", "127.0.0.1:6222"},
			check: func(t *testing.T, c *Config) {}},
		{name: "localhost needs no secret", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", "localhost:6222"},
			check: func(t *testing.T, c *Config) {}},
		{name: "open routes refused", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", "10.0.0.1:6222"},
			wantErr: "nats_listen 10.0.0.1:6222 takes routes from other machines, and they are not authenticated"},
		{name: "all interfaces refused", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", ":6222"},
			wantErr: "Set nats_route_secret"},
		{name: "route TLS alone", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", "0.0.0.0:6222",
			"--nats-route-tls-cert", "n1.crt", "--nats-route-tls-key", "n1.key", "--nats-route-tls-ca", "ca.crt"},
			check: func(t *testing.T, c *Config) {
				if c.NATSRouteTLSCert != "n1.crt" || c.NATSRouteTLSKey != "n1.key" || c.NATSRouteTLSCA != "ca.crt" {
					t.Fatalf("route TLS: %q %q %q", c.NATSRouteTLSCert, c.NATSRouteTLSKey, c.NATSRouteTLSCA)
				}
			}},
		{name: "route TLS incomplete", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-listen", "127.0.0.1:6222", "--nats-route-tls-cert", "n1.crt"},
			wantErr: "all three of nats_route_tls_cert"},
		{name: "secret too short", args: []string{"--nats-route-secret", "short"}, wantErr: "at least 32"},
		{name: "secret with external", args: []string{"--store", pg, "--cluster-node", "n1", "--nats-url", "nats://x:4222"}, env: []string{"CHATD_NATS_ROUTE_SECRET=" + routeSecret},
			wantErr: "an external NATS (nats_url) has its own"},
		{name: "secret without a cluster is ignored", env: []string{"CHATD_NATS_ROUTE_SECRET=" + routeSecret},
			check: func(t *testing.T, c *Config) {}},
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

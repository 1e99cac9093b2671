package cluster_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/cluster"
)

// logbook keeps what a node's NATS server logs, to see a refusal happen.
type logbook struct {
	mu    sync.Mutex
	lines []string
}

func (l *logbook) logf(t *testing.T) func(string, ...any) {
	return func(f string, a ...any) {
		line := fmt.Sprintf(f, a...)
		t.Log(line)
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
}

func (l *logbook) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// openWith starts a node with cfg on a free loopback port (Name "test").
func openWith(t *testing.T, cfg cluster.Config) *cluster.Broker {
	t.Helper()
	cfg.Name, cfg.Listen = "test", "127.0.0.1:0"
	if cfg.Logf == nil {
		cfg.Logf = func(f string, a ...any) { t.Logf(f, a...) }
	}
	b, err := cluster.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// subscribe gives each node an inbox and waits until every node hears
// every other's broadcasts (subscriptions travel the routes on their own
// time).
func subscribe(t *testing.T, nodes ...*cluster.Broker) []*inbox {
	t.Helper()
	boxes := make([]*inbox, len(nodes))
	for i, n := range nodes {
		boxes[i] = &inbox{}
		must(t, n.Subscribe(boxes[i].add))
	}
	for i, n := range nodes {
		ready := fmt.Sprintf("ready %s", n.Node())
		waitFor(t, n.Node()+"'s broadcasts to arrive", func() bool {
			must(t, n.Publish("", []byte(ready)))
			for j, b := range boxes {
				if j != i && !b.has(ready) {
					return false
				}
			}
			return true
		})
	}
	return boxes
}

// outsider checks that node x, refused by the cluster, has no route and
// gets nothing: neither a broadcast nor a message addressed to it. The
// cluster's own nodes hear the marker sent after them, so what was sent
// to x has passed by the time the check runs (and x has no route it
// could come by).
func outsider(t *testing.T, x *cluster.Broker, xbox *inbox, members []*cluster.Broker, boxes []*inbox) {
	t.Helper()
	if n := x.Routes(); n != 0 {
		t.Fatalf("%s, refused, has %d routes", x.Node(), n)
	}
	must(t, members[0].Publish(x.Node(), []byte("for the outsider")))
	must(t, members[0].Publish("", []byte("broadcast after")))
	for _, b := range boxes[1:] {
		waitFor(t, "the broadcast at the members", func() bool { return b.has("broadcast after") })
	}
	if got := xbox.list(); len(got) != 0 {
		t.Fatalf("%s, refused, received %q", x.Node(), got)
	}
	for _, m := range members {
		if n := m.Routes(); n != len(members)-1 {
			t.Fatalf("%s has %d routes, want %d (the outsider admitted?)", m.Node(), n, len(members)-1)
		}
	}
}

// TestRouteSecret: three servers with the same route secret form a
// cluster (the third one joining by gossip, through n1's route only); a
// server with another secret, or none, is refused by them (the refusal
// is in their log), has no route and receives nothing.
func TestRouteSecret(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-the-cluster"
	var book logbook
	n1 := openWith(t, cluster.Config{Node: "n1", RouteSecret: secret, Logf: book.logf(t)})
	n2 := openWith(t, cluster.Config{Node: "n2", RouteSecret: secret, Routes: []string{n1.RouteURL()}})
	n3 := openWith(t, cluster.Config{Node: "n3", RouteSecret: secret, Routes: []string{n1.RouteURL()}})
	members := []*cluster.Broker{n1, n2, n3}
	waitFor(t, "a full mesh of routes", func() bool {
		return n1.Routes() == 2 && n2.Routes() == 2 && n3.Routes() == 2
	})
	boxes := subscribe(t, members...)

	for _, bad := range []struct{ node, secret string }{{"wrong", "another secret, long enough to be one!"}, {"none", ""}} {
		t.Run(bad.node, func(t *testing.T) {
			x := openWith(t, cluster.Config{Node: bad.node, RouteSecret: bad.secret, Routes: []string{n1.RouteURL()}})
			xbox := &inbox{}
			must(t, x.Subscribe(xbox.add))
			waitFor(t, "n1 to refuse "+bad.node, func() bool { return book.has("authentication error") })
			outsider(t, x, xbox, members, boxes)
			x.Close()
			book.mu.Lock()
			book.lines = nil
			book.mu.Unlock()
		})
	}
}

// TestRouteTLS: three servers with certificates of one CA (made here)
// route over TLS, each verifying the other; a server whose certificate
// another CA signed is refused.
func TestRouteTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "chatd test CA")
	good := ca.files(t, dir, "good")
	other := newCA(t, "someone else's CA")
	bad := other.files(t, dir, "bad")
	bad.ca = good.ca // trusts the cluster's CA, but presents another's certificate

	var book logbook
	n1 := openWith(t, cluster.Config{Node: "n1", RouteTLSCert: good.cert, RouteTLSKey: good.key, RouteTLSCA: good.ca, Logf: book.logf(t)})
	n2 := openWith(t, cluster.Config{Node: "n2", RouteTLSCert: good.cert, RouteTLSKey: good.key, RouteTLSCA: good.ca, Routes: []string{n1.RouteURL()}})
	n3 := openWith(t, cluster.Config{Node: "n3", RouteTLSCert: good.cert, RouteTLSKey: good.key, RouteTLSCA: good.ca, Routes: []string{n1.RouteURL()}})
	members := []*cluster.Broker{n1, n2, n3}
	waitFor(t, "a full mesh of routes over TLS", func() bool {
		return n1.Routes() == 2 && n2.Routes() == 2 && n3.Routes() == 2
	})
	boxes := subscribe(t, members...)

	x := openWith(t, cluster.Config{Node: "x", RouteTLSCert: bad.cert, RouteTLSKey: bad.key, RouteTLSCA: bad.ca, Routes: []string{n1.RouteURL()}})
	xbox := &inbox{}
	must(t, x.Subscribe(xbox.add))
	waitFor(t, "n1 to refuse x's certificate", func() bool { return book.has("TLS route handshake error") })
	outsider(t, x, xbox, members, boxes)
}

// TestRouteSecurityConfig: route TLS needs all three files, readable; the
// route settings are refused with an external NATS.
func TestRouteSecurityConfig(t *testing.T) {
	dir := t.TempDir()
	f := newCA(t, "ca").files(t, dir, "n")
	refused(t, []badConfig{
		{"cert only", cluster.Config{Node: "a", Listen: "127.0.0.1:0", RouteTLSCert: f.cert}, "all three"},
		{"no CA", cluster.Config{Node: "a", Listen: "127.0.0.1:0", RouteTLSCert: f.cert, RouteTLSKey: f.key, RouteTLSCA: filepath.Join(dir, "missing.pem")}, "route TLS CA"},
		{"key is not a key", cluster.Config{Node: "a", Listen: "127.0.0.1:0", RouteTLSCert: f.cert, RouteTLSKey: f.ca, RouteTLSCA: f.ca}, "route TLS"},
		{"secret with external", cluster.Config{Node: "a", URL: "nats://127.0.0.1:1", RouteSecret: "s"}, "external NATS"},
	})
}

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return &testCA{cert: cert, der: der, key: key}
}

// tlsFiles are the PEM files of a node: its certificate and key, and the
// CA it trusts.
type tlsFiles struct{ cert, key, ca string }

// files writes a node certificate for 127.0.0.1 and localhost, good as a
// server and as a client (a route server is both), signed by ca.
func (ca *testCA) files(t *testing.T, dir, name string) tlsFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	f := tlsFiles{cert: filepath.Join(dir, name+".crt"), key: filepath.Join(dir, name+".key"), ca: filepath.Join(dir, name+"-ca.crt")}
	write := func(path, typ string, b []byte) {
		must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
	}
	write(f.cert, "CERTIFICATE", der)
	write(f.key, "EC PRIVATE KEY", kder)
	write(f.ca, "CERTIFICATE", ca.der)
	return f
}

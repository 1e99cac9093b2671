// Package cluster joins chatd nodes over NATS: a chat.Broker on nats.go,
// with an embedded NATS server (nats-server as a library) that the nodes
// cluster by routes, or an external NATS.
//
// Subjects: chatd.<cluster>.node.<id> carries what one node addresses to
// another (deliveries, kicks, a hello's answer), chatd.<cluster>.all what
// a node tells every other (connections up and down, heartbeats,
// invalidations). The connection sets NoEcho, so a node never hears its
// own broadcasts. Both subscriptions feed one channel read by one
// goroutine: a receiver handles one node's messages in the order that
// node published them, whichever subject they came on (NATS keeps a
// publisher's order per connection and route). docs/cluster.md.
package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatd/chat"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config says how a node joins the cluster.
type Config struct {
	// Name is the cluster's name: the NATS cluster name of the embedded
	// servers and the middle of the subjects. Empty means "chatd".
	Name string
	// Node is this node's id, unique in the cluster: letters, digits,
	// '-' and '_', at most 64.
	Node string
	// URL, when set, is an external NATS (nats://host:4222, several
	// comma-separated); no server is embedded.
	URL string
	// Listen is the embedded server's route address (host:port) that
	// the other nodes' Routes name. Port 0 picks a free port (tests:
	// see RouteURL). Needed when URL is empty.
	Listen string
	// Routes are the other nodes' route addresses (nats://host:port or
	// host:port). A node may list all of them, including itself; the
	// servers gossip the rest.
	Routes []string
	// RouteSecret, when set, authenticates the embedded server's routes:
	// every node of the cluster sets the same one, and a server that
	// does not present it is refused (nats-server's cluster
	// authorization; the password sent is derived from the secret).
	RouteSecret string
	// RouteTLSCert, RouteTLSKey and RouteTLSCA (PEM files), all three or
	// none, put the routes under TLS with both sides verified: each
	// server presents its certificate, and accepts a peer only with a
	// certificate signed by the CA (which must name the address the
	// route dials: an IP SAN for nats://10.0.0.7:6222).
	RouteTLSCert, RouteTLSKey, RouteTLSCA string
	// Logf receives the NATS server's and connection's errors and
	// warnings. Nil drops them.
	Logf func(format string, args ...any)
}

// routeUser is the user name of the routes' authorization; the password
// is routePassword(RouteSecret).
const routeUser = "chatd"

// routePassword derives the routes' password from the secret: the same
// on every node, safe in a URL, never taken for a bcrypt hash by
// nats-server, and not the secret itself on the wire.
func routePassword(secret string) string {
	h := sha256.Sum256([]byte("chatd route secret\x00" + secret))
	return hex.EncodeToString(h[:])
}

// routeTLS is the routes' TLS configuration from cfg's files, nil when
// none is set.
func routeTLS(cfg Config) (*tls.Config, error) {
	set := 0
	for _, f := range []string{cfg.RouteTLSCert, cfg.RouteTLSKey, cfg.RouteTLSCA} {
		if f != "" {
			set++
		}
	}
	switch set {
	case 0:
		return nil, nil
	case 3:
	default:
		return nil, errors.New("cluster: route TLS needs all three of its certificate, key and CA files (nats_route_tls_cert, nats_route_tls_key, nats_route_tls_ca)")
	}
	if _, err := os.Stat(cfg.RouteTLSCA); err != nil {
		return nil, fmt.Errorf("cluster: route TLS CA: %w", err) // GenTLSConfig says nothing for a missing CA file
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.RouteTLSCert, KeyFile: cfg.RouteTLSKey,
		CaFile: cfg.RouteTLSCA, Verify: true})
	if err != nil {
		return nil, fmt.Errorf("cluster: route TLS: %w", err)
	}
	// A server is both sides of its routes: it verifies the servers it
	// dials with the same CA (as nats-server's own cluster tls block).
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.RootCAs = tc.ClientCAs
	return tc, nil
}

// Broker is a chat.Broker on NATS.
type Broker struct {
	cfg    Config
	srv    *server.Server // the embedded server; nil with an external NATS
	nc     *nats.Conn
	prefix string // chatd.<cluster>.node.
	all    string // chatd.<cluster>.all

	mu   sync.Mutex // guards subs, done
	subs []*nats.Subscription
	done chan struct{} // closed by Close: the receiving goroutine ends
}

var _ chat.Broker = (*Broker)(nil)

// ValidNode reports whether id can name a node (a NATS subject token).
func ValidNode(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Open starts the embedded NATS server (unless cfg.URL names an external
// one) and connects to it.
func Open(cfg Config) (*Broker, error) {
	if cfg.Name == "" {
		cfg.Name = "chatd"
	}
	if !ValidNode(cfg.Node) {
		return nil, fmt.Errorf("cluster: node id %q: use 1-64 letters, digits, '-' or '_'", cfg.Node)
	}
	if !ValidNode(cfg.Name) {
		return nil, fmt.Errorf("cluster: cluster name %q: use 1-64 letters, digits, '-' or '_'", cfg.Name)
	}
	b := &Broker{cfg: cfg, prefix: "chatd." + cfg.Name + ".node.", all: "chatd." + cfg.Name + ".all", done: make(chan struct{})}
	opts := []nats.Option{
		nats.Name("chatd " + cfg.Node),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			b.logf("cluster: nats: %v", err)
		}),
	}
	url := cfg.URL
	if url != "" && (cfg.RouteSecret != "" || cfg.RouteTLSCert != "" || cfg.RouteTLSKey != "" || cfg.RouteTLSCA != "") {
		return nil, errors.New("cluster: the route secret and route TLS are for the embedded NATS server's routes; an external NATS (nats_url) has its own authentication and TLS")
	}
	if url == "" {
		srv, token, err := startServer(cfg)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv), nats.Token(token))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("cluster: connect to NATS %s: %w", orEmbedded(url), err)
	}
	b.nc = nc
	return b, nil
}

func orEmbedded(url string) string {
	if url == "" {
		return "(embedded)"
	}
	return url
}

// startServer starts the embedded NATS server, routes on cfg.Listen, and
// returns it with the token its clients need.
func startServer(cfg Config) (*server.Server, string, error) {
	if cfg.Listen == "" {
		return nil, "", errors.New("cluster: an embedded NATS server needs a route address to listen on (nats_listen), or use an external NATS (nats_url)")
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("cluster: route address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, "", fmt.Errorf("cluster: route address %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	var routes []*url.URL
	for _, r := range cfg.Routes {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !strings.Contains(r, "://") {
			r = "nats://" + r
		}
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return nil, "", fmt.Errorf("cluster: route %q: want nats://host:port", r)
		}
		if u.User == nil && cfg.RouteSecret != "" {
			u.User = url.UserPassword(routeUser, routePassword(cfg.RouteSecret))
		}
		routes = append(routes, u)
	}
	tlsConf, err := routeTLS(cfg)
	if err != nil {
		return nil, "", err
	}
	// The client port: nats-server starts routing only once its client
	// listener is up (DontListen would leave the routes unstarted), so it
	// listens on a free loopback port, behind a token of this process;
	// chatd itself connects in process.
	var tok [16]byte
	rand.Read(tok[:])
	opts := &server.Options{
		ServerName:    cfg.Node,
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		Authorization: hex.EncodeToString(tok[:]),
		NoSigs:        true,
		NoLog:         cfg.Logf == nil,
		Cluster:       server.ClusterOpts{Name: cfg.Name, Host: host, Port: port},
		Routes:        routes,
	}
	if cfg.RouteSecret != "" {
		// Routes this server accepts must present it; the ones it learns
		// by gossip are dialled with it.
		opts.Cluster.Username, opts.Cluster.Password = routeUser, routePassword(cfg.RouteSecret)
	}
	if tlsConf != nil {
		opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tlsConf, 2
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("cluster: NATS server: %w", err)
	}
	if cfg.Logf != nil {
		srv.SetLogger(natsLogger{cfg.Logf}, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, "", fmt.Errorf("cluster: the NATS server did not start (route address %s)", cfg.Listen)
	}
	return srv, opts.Authorization, nil
}

// natsLogger passes the server's errors and warnings to Logf.
type natsLogger struct{ f func(string, ...any) }

func (l natsLogger) Noticef(string, ...any) {}
func (l natsLogger) Warnf(f string, a ...any) {
	l.f("cluster: nats server: "+f, a...)
}
func (l natsLogger) Fatalf(f string, a ...any) { l.f("cluster: nats server: "+f, a...) }
func (l natsLogger) Errorf(f string, a ...any) { l.f("cluster: nats server: "+f, a...) }
func (l natsLogger) Debugf(string, ...any)     {}
func (l natsLogger) Tracef(string, ...any)     {}

func (b *Broker) logf(f string, a ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf(f, a...)
	}
}

// Node is this node's id.
func (b *Broker) Node() string { return b.cfg.Node }

// RouteURL is the embedded server's route address as another node's
// Routes names it (the real port when Listen's was 0); "" with an
// external NATS.
func (b *Broker) RouteURL() string {
	if b.srv == nil {
		return ""
	}
	a := b.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats://" + a.String()
}

// Routes is the number of other servers the embedded server has routes
// to (0 with an external NATS).
func (b *Broker) Routes() int {
	if b.srv == nil {
		return 0
	}
	return b.srv.NumRemotes()
}

// Publish sends msg to node, or to every other node when node is "".
// nats.go copies msg into its buffer before returning.
func (b *Broker) Publish(node string, msg []byte) error {
	if node == "" {
		return b.nc.Publish(b.all, msg)
	}
	return b.nc.Publish(b.prefix+node, msg)
}

// MaxPayload is the largest message NATS takes (the server's
// max_payload, 1 MB by default): chat.Core.Forward sends larger requests
// and replies in pieces under it.
func (b *Broker) MaxPayload() int64 { return b.nc.MaxPayload() }

// inbox is how many received messages wait for the handler; past it
// nats.go drops them (a slow consumer, logged through ErrorHandler). The
// read loop puts them in the channel itself, so the two subscriptions'
// messages keep their arrival order.
const inbox = 1 << 16

// Subscribe calls fn with every message addressed to this node or
// broadcast by another, one at a time, in arrival order.
func (b *Broker) Subscribe(fn func(msg []byte)) error {
	ch := make(chan *nats.Msg, inbox)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subj := range []string{b.prefix + b.cfg.Node, b.all} {
		s, err := b.nc.ChanSubscribe(subj, ch)
		if err != nil {
			return fmt.Errorf("cluster: subscribe %s: %w", subj, err)
		}
		b.subs = append(b.subs, s)
	}
	// The server has the subscriptions before anything is published:
	// the first hello's answers find them.
	if err := b.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	done := b.done
	go func() {
		for {
			select {
			case m := <-ch:
				fn(m.Data)
			case <-done:
				return
			}
		}
	}()
	return nil
}

// Close stops receiving, flushes what was published, closes the
// connection and shuts the embedded server down.
func (b *Broker) Close() error {
	b.mu.Lock()
	select {
	case <-b.done:
		b.mu.Unlock()
		return nil
	default:
	}
	close(b.done)
	for _, s := range b.subs {
		_ = s.Unsubscribe()
	}
	b.mu.Unlock()
	_ = b.nc.FlushTimeout(2 * time.Second)
	b.nc.Close()
	b.shutdownServer()
	return nil
}

func (b *Broker) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// Package config is chatd's effective configuration: one struct covering
// every setting, and the loader that layers its sources.
//
// Precedence, lowest to highest:
//
//  1. built-in defaults;
//  2. the config file: the path given by --config (or CHATD_CONFIG), else
//     <data_dir>/chatd.conf when that file exists;
//  3. environment variables CHATD_<SETTING> (upper snake case, e.g.
//     CHATD_IDLE_TIMEOUT);
//  4. command-line flags --<setting> (kebab case, e.g. --idle-timeout).
//
// The config file is `key = value` lines (see ParseFile). Every setting has
// the same name in all three places: idle_timeout, CHATD_IDLE_TIMEOUT,
// --idle-timeout. An invalid value stops startup with an error that names the
// setting and where the value came from.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Config is every setting chatd runs with. Load returns it validated and
// with derived paths resolved; the zero Config is not meaningful (use
// Default).
type Config struct {
	// DataDir is the data folder: database, admin key, pid, lock, run and
	// log files. Load makes it absolute.
	DataDir string
	// WSAddr is the WebSocket listen address (host:port; port 0 picks one).
	WSAddr string
	// HTTPAddr is the HTTP API listen address.
	HTTPAddr string
	// AdminKey, when set, is the server admin key, used instead of the
	// data folder's admin.key file. Secret: printed as "***".
	AdminKey string

	// LogLevel is trace, debug, info, warn or error.
	LogLevel string
	// LogFile is where `chatd daemon` writes JSON log lines. Empty means
	// <data_dir>/chatd.log. The foreground server logs to stderr.
	LogFile string
	// LogMaxSizeMB rotates the log file when it reaches this many MiB.
	LogMaxSizeMB int
	// LogMaxBackups is how many rotated log files are kept (0 keeps all).
	LogMaxBackups int
	// LogMaxAgeDays deletes rotated log files older than this (0 keeps all).
	LogMaxAgeDays int

	// Loops is the number of WebSocket event loops; 0 means one per CPU.
	Loops int
	// MaxConns caps concurrent WebSocket connections; 0 means the soft
	// open-file limit minus FDReserve (10,000 on Windows). A larger value
	// is lowered to that.
	MaxConns int
	// FDReserve is the number of file descriptors kept free for everything
	// but WebSocket connections.
	FDReserve int
	// HandshakeTimeout closes a connection that has not completed the
	// WebSocket handshake within it, and one that has not logged in within
	// it after the handshake.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that sent nothing (not even a pong)
	// for this long.
	IdleTimeout time.Duration
	// PingInterval is how often the server pings an idle connection.
	PingInterval time.Duration
	// MaxMessage caps one inbound WebSocket message in bytes.
	MaxMessage int
	// CloseTimeout is how long the server waits for a client's close frame
	// after sending its own; also the grace clients get at shutdown.
	CloseTimeout time.Duration
	// MaxOutbound caps the bytes queued for one slow client before it is
	// closed as a slow consumer.
	MaxOutbound int
	// AllowedOrigins lists the Origin values a browser may connect from
	// (scheme://host[:port]); empty, or a list holding "*", allows every
	// origin. Clients that send no Origin (not browsers) are always
	// allowed.
	AllowedOrigins []string
	// Subprotocols lists the WebSocket subprotocols the server accepts, in
	// order of preference.
	Subprotocols []string
	// EchoFirstProtocol answers with the client's first offered
	// subprotocol when none of Subprotocols matches (WeChat H5 clients
	// offer one and fail unless it comes back).
	EchoFirstProtocol bool
	// Compression negotiates permessage-deflate with clients that offer it.
	Compression bool
	// TrustedProxies lists the proxy addresses (IPs or CIDRs) whose
	// X-Forwarded-For / X-Real-IP headers are believed.
	TrustedProxies []string
	// AdminFromAnywhere allows the admin API (including shutdown) from
	// non-loopback addresses. Off: admin calls must come from loopback.
	AdminFromAnywhere bool
	// Demo says whether the demo pages are served under /demo/ with their
	// loopback-only backend (docs/demo.md): "auto" (on in the foreground,
	// off under `chatd daemon`), "true" or "false". See DemoOn.
	Demo string

	// HTTPMaxConns caps concurrently served HTTP connections.
	HTTPMaxConns int
	// HTTPMaxBody caps one HTTP request body in bytes.
	HTTPMaxBody int
	// HTTPMaxConnsPerIP caps the HTTP connections one client address may
	// hold (trusted proxies exempt).
	HTTPMaxConnsPerIP int
	// HTTPReservedConns are HTTP connection slots beyond HTTPMaxConns for
	// HTTPReservedPeers: health checks and loopback-only endpoints only.
	HTTPReservedConns int
	// HTTPReservedPeers are the IPs/CIDRs that may use the reserved
	// slots; empty means loopback.
	HTTPReservedPeers []string
	// HTTPHeaderTimeout bounds the read of an HTTP request's headers (a
	// deadline that trickling bytes do not extend).
	HTTPHeaderTimeout time.Duration
	// HTTPBodyTimeout bounds the read of an HTTP request's body, from the
	// end of its headers.
	HTTPBodyTimeout time.Duration
	// HTTPCORSOrigins are the browser origins whose pages may call the
	// user endpoints (/v1/…).
	HTTPCORSOrigins []string
	// HTTPMaxPolls caps waiting long-polls and user event streams.
	HTTPMaxPolls int
	// HTTPPollsPerUser caps one user's waiting long-polls and streams.
	HTTPPollsPerUser int
	// HTTPPollTimeout is a long-poll's default wait.
	HTTPPollTimeout time.Duration
	// HTTPEventsKeep is how long a user's HTTP event buffer outlives its
	// last reader.
	HTTPEventsKeep time.Duration
	// HTTPEventsMax caps the events in one user's HTTP event buffer.
	HTTPEventsMax int
	// UploadMaxImage, UploadMaxVoice, UploadMaxVideo and UploadMaxFile
	// cap one upload of each type in bytes.
	UploadMaxImage, UploadMaxVoice, UploadMaxVideo, UploadMaxFile int
	// UploadQuota caps the bytes of uploads one app stores (0: no cap).
	UploadQuota int
	// UploadMaxConcurrent caps the uploads in progress.
	UploadMaxConcurrent int
	// UploadTimeout bounds the receipt of one upload's body.
	UploadTimeout time.Duration
	// FileURLTTL is how long a signed file URL works.
	FileURLTTL time.Duration
	// UploadGrace is how long an upload no message carries is kept.
	UploadGrace time.Duration
	// MediaURLHosts restricts the hosts of external media URLs and avatars.
	MediaURLHosts []string
	// SignatureWindow is how far a signed request's timestamp may be from
	// the server clock, either way (ahead, SignatureAhead is tighter).
	SignatureWindow time.Duration
	// SignatureAhead is how far ahead of the server clock a signed
	// request's timestamp may be; it bounds how long a nonce is kept.
	SignatureAhead time.Duration

	// TokenTTL is the default lifetime of an issued chat token.
	TokenTTL time.Duration
	// MaxContent caps one message's content JSON in bytes.
	MaxContent int
	// HistoryLimit is the default page size of history and sync.
	HistoryLimit int
	// MaxSessionsListed caps the sessions one `sessions` reply lists.
	MaxSessionsListed int
	// GroupCreateRate caps the groups one user creates per minute through
	// the client API.
	GroupCreateRate int
	// GroupAddRate caps the members one user adds to groups per minute
	// through the client API.
	GroupAddRate int
	// RecallWindow is how long after sending a sender may recall a
	// message; EditWindow, edit one.
	RecallWindow, EditWindow time.Duration
	// MaxGroupMembers caps a group's members; GroupJoinHistory lets new
	// members read the history from before their join; DismissedReadable
	// keeps a dismissed group's history readable.
	MaxGroupMembers   int
	MentionAllMembers bool // any member may @all
	GroupJoinHistory  bool
	DismissedReadable bool
	// ConsultTick is how often a running consultation's members get its
	// remaining time.
	ConsultTick time.Duration
	// ConsultWarnings are the remaining times (durations) at which a
	// running consultation's members get a warning.
	ConsultWarnings []string
	// ConsultRounding is "minute" or "second" (consult_billing.go).
	ConsultRounding string
	// ConsultMaxPerConsultant caps one consultant's open consultations.
	ConsultMaxPerConsultant int
	// ConsultPendingTTL is how long a consultation waits unstarted by
	// default.
	ConsultPendingTTL time.Duration
	// PresenceDebounce is how long a user's online state must hold before
	// friends and peers are told.
	PresenceDebounce time.Duration
	// JournalSize bounds writes waiting for the group-commit journal.
	JournalSize int
	// CheckpointInterval is how often the store writes its write-ahead
	// log's changes into the database file (sooner when they pass ~64 MiB).
	CheckpointInterval time.Duration
	// Store is where chat data lives: empty for the bbolt file
	// <DataDir>/chat.db, or a postgres:// URL for a PostgreSQL database
	// (pgstore; docs/cluster.md). The data folder keeps everything else.
	Store string
	// ClusterNode is this node's id in a cluster; empty runs a single
	// node (docs/cluster.md).
	ClusterNode string
	// ClusterName is the cluster's name, the same on every node.
	ClusterName string
	// NATSListen is the embedded NATS server's route address.
	NATSListen string
	// NATSRoutes are the other nodes' route addresses.
	NATSRoutes []string
	// NATSURL is an external NATS, instead of the embedded server.
	NATSURL string
	// NATSRouteSecret authenticates the embedded server's routes: the
	// same on every node. Secret: printed as "***".
	NATSRouteSecret string
	// NATSRouteTLSCert, NATSRouteTLSKey and NATSRouteTLSCA (PEM files,
	// all three or none) put the routes under TLS, both sides verified.
	NATSRouteTLSCert, NATSRouteTLSKey, NATSRouteTLSCA string
	// DiskWarnFree: below this many free bytes on the data folder's
	// disk, chatd warns in its log and sets chatd_disk_low.
	DiskWarnFree int
	// RetentionDays deletes messages older than this many days in apps
	// that set no retention of their own; 0 keeps them.
	RetentionDays int

	// Per-user abuse limits (chat.Limits); 0 turns a limit off, a zero
	// burst means twice the rate.
	SendRate, SendBurst       int
	RequestRate, RequestBurst int
	MaxUserConns              int
	// Webhooks (docs/webhooks.md): one attempt's time limit, how long a
	// delivery is retried, attempts in flight per endpoint, the outbox
	// bound, the offline-push window, how long finished deliveries stay
	// listed, and the target-host rules.
	WebhookTimeout       time.Duration
	WebhookRetryFor      time.Duration
	WebhookConcurrency   int
	WebhookOutboxMax     int
	WebhookPushDebounce  time.Duration
	WebhookKeep          time.Duration
	WebhookAllowLoopback bool
	WebhookAllowPrivate  bool
	WebhookAllowedHosts  []string

	// ShutdownTimeout bounds a graceful stop; past it the process exits
	// with an error.
	ShutdownTimeout time.Duration
}

// DefaultWSAddr and DefaultHTTPAddr are the default listen addresses.
const (
	DefaultWSAddr   = ":22886"
	DefaultHTTPAddr = ":22887"
	DefaultDataDir  = "./data"
)

// FileName is the config file looked for in the data folder.
const FileName = "chatd.conf"

// Default returns the built-in defaults.
func Default() Config {
	var c Config
	for _, s := range settings {
		if err := s.set(&c, s.Default); err != nil {
			panic("config: bad default for " + s.Name + ": " + err.Error())
		}
	}
	return c
}

// DemoOn reports whether the demo pages are served: the demo setting, or
// with "auto" whether the server runs in the foreground (not as a
// daemon).
func (c *Config) DemoOn(daemon bool) bool {
	switch c.Demo {
	case "true":
		return true
	case "false":
		return false
	}
	return !daemon
}

// LogPath is the daemon log file: LogFile, or <DataDir>/chatd.log.
func (c *Config) LogPath() string {
	if c.LogFile != "" {
		return c.LogFile
	}
	return filepath.Join(c.DataDir, "chatd.log")
}

// validate checks relations between settings (each value alone was
// checked when it was parsed).
func (c *Config) validate() error {
	if c.PingInterval >= c.IdleTimeout {
		return fmt.Errorf("ping_interval (%s) must be shorter than idle_timeout (%s), or idle clients are dropped between pings", c.PingInterval, c.IdleTimeout)
	}
	if c.MaxContent > c.MaxMessage {
		return fmt.Errorf("max_content (%d) must not exceed max_message (%d): a message's content travels inside one WebSocket message", c.MaxContent, c.MaxMessage)
	}
	if c.MaxMessage > 1<<30 {
		return fmt.Errorf("max_message (%d) must be at most 1GiB", c.MaxMessage)
	}
	if c.MaxOutbound > 1<<30 {
		return fmt.Errorf("max_outbound (%d) must be at most 1GiB", c.MaxOutbound)
	}
	if c.TokenTTL > 365*24*time.Hour {
		return fmt.Errorf("token_ttl (%s) must be at most 8760h (365 days), the longest a token may live", c.TokenTTL)
	}
	if c.HistoryLimit > 500 {
		return fmt.Errorf("history_limit (%d) must be at most 500, the largest page a client may ask for", c.HistoryLimit)
	}
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	if c.ClusterNode == "" && (c.NATSListen != "" || len(c.NATSRoutes) > 0 || c.NATSURL != "") {
		return errors.New("nats_listen, nats_routes and nats_url need cluster_node: set this node's id to run a cluster, or remove them")
	}
	if c.ClusterNode != "" {
		if c.Store == "" {
			return errors.New("cluster_node needs store: the nodes of a cluster share one PostgreSQL database (docs/cluster.md)")
		}
		if (c.NATSListen == "") == (c.NATSURL == "") {
			return errors.New("cluster_node needs exactly one of nats_listen (the embedded NATS server's route address) and nats_url (an external NATS)")
		}
		if c.NATSURL != "" && len(c.NATSRoutes) > 0 {
			return errors.New("nats_routes are for the embedded NATS server; with nats_url the external NATS does the routing")
		}
	}
	return c.validateRouteSecurity()
}

// validateRouteSecurity checks the route secret and TLS settings, and
// refuses routes that anyone who reaches them could join: an embedded
// server listening beyond loopback needs a secret or TLS, because a
// server on its route port receives every delivery of the cluster (every
// message to a device on another node) and may publish kicks and
// deliveries of its own.
func (c *Config) validateRouteSecurity() error {
	tlsSet := 0
	for _, f := range []string{c.NATSRouteTLSCert, c.NATSRouteTLSKey, c.NATSRouteTLSCA} {
		if f != "" {
			tlsSet++
		}
	}
	// Without any cluster they are ignored (a chatd.conf shared by the
	// commands, such as status, may hold them).
	if (c.NATSRouteSecret != "" || tlsSet > 0) && c.NATSURL != "" {
		return errors.New("nats_route_secret and nats_route_tls_* secure the embedded NATS server's routes (nats_listen); an external NATS (nats_url) has its own authentication and TLS, in the URL")
	}
	if tlsSet != 0 && tlsSet != 3 {
		return errors.New("route TLS needs all three of nats_route_tls_cert, nats_route_tls_key and nats_route_tls_ca (PEM files)")
	}
	if c.NATSListen != "" && c.NATSRouteSecret == "" && tlsSet == 0 && !LoopbackAddr(c.NATSListen) {
		return fmt.Errorf("nats_listen %s takes routes from other machines, and they are not authenticated: anyone who reaches the port could join the cluster and read its deliveries. Set nats_route_secret, the same on every node (64 hex digits from `openssl rand -hex 32`), and/or route TLS (nats_route_tls_cert, _key, _ca); or listen on 127.0.0.1 for a cluster on one machine (docs/cluster.md)", c.NATSListen)
	}
	return nil
}

// LoopbackAddr reports whether the host of addr (host:port) is a loopback
// address or localhost: reachable from this machine only. An empty host
// (all interfaces) is not.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Value parsers. Each returns an error worded to follow "<source>: ".

func parseAddr(v string) (string, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("invalid address %q: want host:port, e.g. :22886 or 127.0.0.1:22886", v)
	}
	if strings.ContainsAny(host, " /") {
		return "", fmt.Errorf("invalid address %q: bad host", v)
	}
	p, err := parseUint(port)
	if err != nil || p > 65535 {
		return "", fmt.Errorf("invalid address %q: port must be 0-65535", v)
	}
	return v, nil
}

func parseUint(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	n := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < '0' || ch > '9' {
			return 0, errors.New("not a number")
		}
		if n > (1<<53)/10 {
			return 0, errors.New("too large")
		}
		n = n*10 + int(ch-'0')
	}
	return n, nil
}

// parseSize reads a byte size: a plain number of bytes or a number with a
// binary suffix K/KB/KiB, M/MB/MiB, G/GB/GiB (all powers of 1024).
func parseSize(v string) (int, error) {
	s := strings.TrimSpace(v)
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	n, err := parseUint(num)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: want bytes, e.g. 65536 or 64KiB", v)
	}
	mul := 1
	switch unit {
	case "", "b":
	case "k", "kb", "kib":
		mul = 1 << 10
	case "m", "mb", "mib":
		mul = 1 << 20
	case "g", "gb", "gib":
		mul = 1 << 30
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use KiB, MiB or GiB)", v, unit)
	}
	if n > (1<<40)/mul {
		return 0, fmt.Errorf("invalid size %q: too large", v)
	}
	return n * mul, nil
}

// formatSize prints n with the largest binary unit that divides it.
func formatSize(n int) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n != 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n != 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%d", n)
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "on":
		return true, nil
	case "0", "f", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q: want true or false", v)
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 5m, 720h", v)
	}
	return d, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("invalid origin %q: want scheme://host[:port] or *", o)
	}
	return nil
}

func checkProxy(p string) error {
	if strings.Contains(p, "/") {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("invalid proxy %q: want an IP or a CIDR such as 10.0.0.0/8", p)
		}
		return nil
	}
	if _, err := netip.ParseAddr(p); err != nil {
		return fmt.Errorf("invalid proxy %q: want an IP or a CIDR such as 10.0.0.0/8", p)
	}
	return nil
}

// checkPeer checks an http_reserved_peers entry: an IP or a CIDR.
func checkPeer(p string) error {
	if checkProxy(p) != nil {
		return fmt.Errorf("invalid address %q: want an IP or a CIDR such as 10.0.0.0/8", p)
	}
	return nil
}

func checkToken(p string) error {
	// RFC 7230 token characters: what a Sec-WebSocket-Protocol value may hold.
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", ch) >= 0 {
			return fmt.Errorf("invalid subprotocol %q: only token characters allowed", p)
		}
	}
	return nil
}

// Origins is AllowedOrigins as the WebSocket handshake wants it: nil (any
// origin) when the list is empty or holds "*".
func (c *Config) Origins() []string {
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			return nil
		}
	}
	return c.AllowedOrigins
}

// TrustedPrefixes is TrustedProxies as prefixes: a single address becomes a
// /32 or /128. The values were checked when loaded.
func (c *Config) TrustedPrefixes() []netip.Prefix { return prefixes(c.TrustedProxies) }

// ReservedPrefixes is HTTPReservedPeers as prefixes; nil (loopback) when
// the list is empty.
func (c *Config) ReservedPrefixes() []netip.Prefix { return prefixes(c.HTTPReservedPeers) }

// prefixes converts checked IPs and CIDRs to prefixes.
func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range list {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx.Masked())
		} else if a, err := netip.ParseAddr(p); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

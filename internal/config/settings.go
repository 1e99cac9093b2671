package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Setting describes one configuration key. Settings is the complete list, in
// the order help and `chatd config` print them.
type Setting struct {
	// Name is the file key (snake case). The env var is CHATD_ + upper
	// case; the flag is -- + kebab case.
	Name string
	// Default is the built-in default as text.
	Default string
	// Usage is the one-line description for --help and the docs.
	Usage string
	// Kind is the value's syntax: string, address, duration, size, int,
	// bool, list, level.
	Kind string
	// Secret values are printed as "***".
	Secret bool
	// Aliases are extra flag names (without dashes).
	Aliases []string

	set func(c *Config, v string) error
	get func(c *Config) string
}

// Env is the setting's environment variable.
func (s *Setting) Env() string { return EnvPrefix + strings.ToUpper(s.Name) }

// Flag is the setting's flag name, without dashes.
func (s *Setting) Flag() string { return strings.ReplaceAll(s.Name, "_", "-") }

// Get formats the setting's value in c (secrets included; use Display to
// print).
func (s *Setting) Get(c *Config) string { return s.get(c) }

// Display formats the value for printing: secrets that are set show as ***.
func (s *Setting) Display(c *Config) string {
	v := s.get(c)
	if s.Secret && v != "" {
		return "***"
	}
	return v
}

// EnvPrefix starts every setting's environment variable.
const EnvPrefix = "CHATD_"

// Settings lists every setting.
func Settings() []*Setting { return settings }

func lookup(name string) *Setting {
	for _, s := range settings {
		if s.Name == name {
			return s
		}
	}
	return nil
}

var settings = []*Setting{
	str("data_dir", DefaultDataDir, "data folder: chat.db, admin.key, chatd.pid, chatd.lock, chatd.run, chatd.log, chatd.conf",
		func(c *Config) *string { return &c.DataDir }, nonEmpty, "data"),
	addr("ws_addr", DefaultWSAddr, "WebSocket listen address (host:port; port 0 picks a free port)",
		func(c *Config) *string { return &c.WSAddr }),
	addr("http_addr", DefaultHTTPAddr, "HTTP API listen address (host:port; port 0 picks a free port)",
		func(c *Config) *string { return &c.HTTPAddr }),
	secret("admin_key", "", "server admin key; empty means <data_dir>/admin.key (created on first start). Prefer that file or the environment: a --admin-key value is visible to other users in the process list",
		func(c *Config) *string { return &c.AdminKey }),

	level("log_level", "info", "log level: trace, debug, info, warn, error",
		func(c *Config) *string { return &c.LogLevel }),
	str("log_file", "", "daemon log file (JSON lines); empty means <data_dir>/chatd.log",
		func(c *Config) *string { return &c.LogFile }, nil),
	intv("log_max_size_mb", "100", 1, "rotate the daemon log file at this many MiB",
		func(c *Config) *int { return &c.LogMaxSizeMB }),
	intv("log_max_backups", "10", 0, "rotated log files to keep (0 keeps all)",
		func(c *Config) *int { return &c.LogMaxBackups }),
	intv("log_max_age_days", "0", 0, "delete rotated log files older than this many days (0 keeps all)",
		func(c *Config) *int { return &c.LogMaxAgeDays }),

	intv("loops", "0", 0, "WebSocket event loops (0: one per CPU)",
		func(c *Config) *int { return &c.Loops }),
	intv("max_conns", "0", 0, "maximum concurrent WebSocket connections (0: the open-file limit minus fd_reserve; 10000 on Windows)",
		func(c *Config) *int { return &c.MaxConns }),
	intv("fd_reserve", "400", 1, "file descriptors kept free for the store, HTTP side, listeners and logs",
		func(c *Config) *int { return &c.FDReserve }),
	dur("handshake_timeout", "10s", "close a connection that has not completed the WebSocket handshake, or not logged in, within this",
		func(c *Config) *time.Duration { return &c.HandshakeTimeout }),
	dur("idle_timeout", "60s", "close a connection that sent nothing (not even a pong) for this long",
		func(c *Config) *time.Duration { return &c.IdleTimeout }),
	dur("ping_interval", "25s", "ping idle connections this often (keep it under proxies' read timeouts)",
		func(c *Config) *time.Duration { return &c.PingInterval }),
	size("max_message", "64KiB", "largest inbound WebSocket message",
		func(c *Config) *int { return &c.MaxMessage }),
	dur("close_timeout", "2s", "wait this long for a client's close reply, and for the replies owed before a client's own close (also the shutdown grace for clients)",
		func(c *Config) *time.Duration { return &c.CloseTimeout }),
	size("max_outbound", "1MiB", "bytes queued for one slow client before it is dropped",
		func(c *Config) *int { return &c.MaxOutbound }),
	list("allowed_origins", "", "browser Origins allowed to connect (scheme://host[:port] or *); empty allows all",
		func(c *Config) *[]string { return &c.AllowedOrigins }, checkOrigin),
	list("subprotocols", "", "WebSocket subprotocols accepted, in order of preference",
		func(c *Config) *[]string { return &c.Subprotocols }, checkToken),
	boolean("echo_first_protocol", "false", "answer with the client's first offered subprotocol when none matches",
		func(c *Config) *bool { return &c.EchoFirstProtocol }),
	list("trusted_proxies", "", "proxy IPs/CIDRs whose X-Forwarded-For and X-Real-IP are believed",
		func(c *Config) *[]string { return &c.TrustedProxies }, checkProxy),
	boolean("compression", "false", "negotiate permessage-deflate with clients that offer it",
		func(c *Config) *bool { return &c.Compression }),
	boolean("admin_from_anywhere", "false", "allow the admin API from non-loopback addresses",
		func(c *Config) *bool { return &c.AdminFromAnywhere }),
	{Name: "demo", Default: "auto", Kind: "auto|bool",
		Usage: "serve the demo pages under /demo/ on the HTTP port, with a backend that answers this machine only (docs/demo.md): auto is on in the foreground, off under `chatd daemon`",
		set: func(c *Config, v string) error {
			if strings.EqualFold(strings.TrimSpace(v), "auto") {
				c.Demo = "auto"
				return nil
			}
			b, err := parseBool(v)
			if err != nil {
				return fmt.Errorf("invalid value %q: want auto, true or false", v)
			}
			c.Demo = strconv.FormatBool(b)
			return nil
		},
		get: func(c *Config) string { return c.Demo }},

	intv("http_max_conns", "256", 1, "concurrent HTTP API connections; more are answered 503",
		func(c *Config) *int { return &c.HTTPMaxConns }),
	size("http_max_body", "1MiB", "largest HTTP request body",
		func(c *Config) *int { return &c.HTTPMaxBody }),
	intv("http_conns_per_ip", "64", 1, "HTTP API connections one client address may hold (trusted proxies exempt); more are answered 429",
		func(c *Config) *int { return &c.HTTPMaxConnsPerIP }),
	intv("http_reserved_conns", "16", 1, "HTTP connections beyond http_max_conns kept for http_reserved_peers: /healthz, admin API, /metrics and /debug only",
		func(c *Config) *int { return &c.HTTPReservedConns }),
	list("http_reserved_peers", "", "IPs/CIDRs that may use the reserved HTTP connections (e.g. a load balancer's health checks); empty means loopback",
		func(c *Config) *[]string { return &c.HTTPReservedPeers }, checkPeer),
	dur("http_header_timeout", "10s", "deadline for reading an HTTP request's headers (trickling bytes do not extend it)",
		func(c *Config) *time.Duration { return &c.HTTPHeaderTimeout }),
	dur("http_body_timeout", "30s", "deadline for reading an HTTP request's body, from the end of its headers",
		func(c *Config) *time.Duration { return &c.HTTPBodyTimeout }),
	list("http_cors_origins", "", "browser Origins (scheme://host[:port] or *) whose pages may call the user endpoints (/v1/…); preflights answered. Empty allows none",
		func(c *Config) *[]string { return &c.HTTPCORSOrigins }, checkOrigin),
	intv("http_max_polls", "5000", 1, "waiting long-polls and user event streams (GET /v1/events, /v1/events/stream) together; more are answered 503",
		func(c *Config) *int { return &c.HTTPMaxPolls }),
	intv("http_polls_per_user", "8", 1, "waiting long-polls and event streams one user may hold; more are answered 429",
		func(c *Config) *int { return &c.HTTPPollsPerUser }),
	dur("http_poll_timeout", "25s", "how long a long-poll waits for an event when it names no timeout (keep it under proxies' read timeouts)",
		func(c *Config) *time.Duration { return &c.HTTPPollTimeout }),
	dur("http_events_keep", "5m", "how long a user's HTTP event buffer outlives the last long-poll, stream or recv (their cursors stay valid this long)",
		func(c *Config) *time.Duration { return &c.HTTPEventsKeep }),
	intv("http_events_max", "1000", 1, "events one user's HTTP event buffer keeps (a cursor older than them is told to resync)",
		func(c *Config) *int { return &c.HTTPEventsMax }),
	size("upload_max_image", "10MiB", "largest image upload",
		func(c *Config) *int { return &c.UploadMaxImage }),
	size("upload_max_voice", "2MiB", "largest voice upload",
		func(c *Config) *int { return &c.UploadMaxVoice }),
	size("upload_max_video", "50MiB", "largest video upload",
		func(c *Config) *int { return &c.UploadMaxVideo }),
	size("upload_max_file", "50MiB", "largest file upload",
		func(c *Config) *int { return &c.UploadMaxFile }),
	size("upload_quota", "10GiB", "bytes of uploads one app may store; past it, uploads of new files are answered too_large",
		func(c *Config) *int { return &c.UploadQuota }),
	intv("upload_concurrent", "32", 1, "uploads in progress at once; more are answered 503 before their body is read",
		func(c *Config) *int { return &c.UploadMaxConcurrent }),
	dur("upload_timeout", "10m", "deadline for receiving one upload's body",
		func(c *Config) *time.Duration { return &c.UploadTimeout }),
	dur("file_url_ttl", "1h", "how long a signed file URL works",
		func(c *Config) *time.Duration { return &c.FileURLTTL }),
	dur("upload_grace", "24h", "remove an upload no message carries (never sent, or its messages gone) once it is this old",
		func(c *Config) *time.Duration { return &c.UploadGrace }),
	list("media_url_hosts", "", "hosts external URLs in image/voice/video/file messages and avatars may name (host, or *.domain); empty allows any http(s) host",
		func(c *Config) *[]string { return &c.MediaURLHosts }, nil),
	dur("signature_window", "5m", "how far a signed request's timestamp may be from the server clock",
		func(c *Config) *time.Duration { return &c.SignatureWindow }),
	dur("signature_ahead", "1m", "how far ahead of the server clock a signed request's timestamp may be (bounds how long its nonce is kept)",
		func(c *Config) *time.Duration { return &c.SignatureAhead }),

	dur("token_ttl", "720h", "default lifetime of an issued chat token (at most 8760h, 365 days)",
		func(c *Config) *time.Duration { return &c.TokenTTL }),
	size("max_content", "32KiB", "largest message content JSON",
		func(c *Config) *int { return &c.MaxContent }),
	intv("history_limit", "50", 1, "default page size of history and sync (at most 500)",
		func(c *Config) *int { return &c.HistoryLimit }),
	intv("max_sessions_listed", "1000", 1, "most sessions one `sessions` page lists (the largest limit a client may ask; the reply's next_cursor continues the list)",
		func(c *Config) *int { return &c.MaxSessionsListed }),
	intv("group_create_rate", "20", 1, "groups one user may create per minute through the client API",
		func(c *Config) *int { return &c.GroupCreateRate }),
	intv("group_add_rate", "200", 1, "members one user may add to groups per minute through the client API (members named at creation count)",
		func(c *Config) *int { return &c.GroupAddRate }),
	dur("recall_window", "2m", "how long after sending a sender may recall a message (group owners, admins and the host may at any time)",
		func(c *Config) *time.Duration { return &c.RecallWindow }),
	dur("edit_window", "15m", "how long after sending a sender may edit a text or rich message",
		func(c *Config) *time.Duration { return &c.EditWindow }),
	intv("max_group_members", "10000", 2, "most members a group may have, its owner included",
		func(c *Config) *int { return &c.MaxGroupMembers }),
	boolean("group_join_history", "true", "members added to a group see its history from before they joined (false: from their join on)",
		func(c *Config) *bool { return &c.GroupJoinHistory }),
	boolean("dismissed_readable", "true", "a dismissed group's members can still read its history (false: they cannot)",
		func(c *Config) *bool { return &c.DismissedReadable }),
	boolean("mention_all_members", "false", "every group member may mention everyone (false: owners and admins only)",
		func(c *Config) *bool { return &c.MentionAllMembers }),
	dur("consult_tick", "10s", "how often a running consultation's members get its remaining time (the client counts down in between)",
		func(c *Config) *time.Duration { return &c.ConsultTick }),
	list("consult_warnings", "5m,1m,10s", "remaining times at which a running consultation's members get a warning",
		func(c *Config) *[]string { return &c.ConsultWarnings }, checkPositiveDuration),
	str("consult_rounding", "minute", "how a consultation's billed seconds become an amount: minute (every started minute) or second (pro rata, rounded up)",
		func(c *Config) *string { return &c.ConsultRounding }, checkRounding),
	intv("consult_max_open", "10", 1, "consultations one consultant may have pending, active or paused at once",
		func(c *Config) *int { return &c.ConsultMaxPerConsultant }),
	dur("consult_pending_ttl", "30m", "how long a consultation may wait unstarted when the host gives no expires_in",
		func(c *Config) *time.Duration { return &c.ConsultPendingTTL }),
	dur("presence_debounce", "5s", "how long a user's online state must hold before friends and private-session peers get a presence event (a flapping connection is not announced)",
		func(c *Config) *time.Duration { return &c.PresenceDebounce }),
	intv("journal_size", "65536", 1, "writes that may wait for the group-commit journal",
		func(c *Config) *int { return &c.JournalSize }),
	dur("checkpoint_interval", "5s", "how often the write-ahead log is written into the database file (longer: fewer page rewrites, more to replay after a crash)",
		func(c *Config) *time.Duration { return &c.CheckpointInterval }),
	storeSetting(),
	str("cluster_node", "", "this node's id in a cluster of chatd nodes (letters, digits, - and _); empty runs a single node. Needs a PostgreSQL store and nats_listen or nats_url (docs/cluster.md)",
		func(c *Config) *string { return &c.ClusterNode }, checkNodeID),
	str("cluster_name", "chatd", "the cluster's name: every node of one cluster uses the same (letters, digits, - and _)",
		func(c *Config) *string { return &c.ClusterName }, checkNodeID),
	str("nats_listen", "", "cluster: the embedded NATS server's route address (host:port) that the other nodes' nats_routes name",
		func(c *Config) *string { return &c.NATSListen }, checkOptionalAddr),
	list("nats_routes", "", "cluster: the other nodes' route addresses (nats://host:port), comma-separated",
		func(c *Config) *[]string { return &c.NATSRoutes }, checkRoute),
	natsURLSetting(),
	secret("nats_route_secret", "", "cluster: authenticates the embedded NATS server's routes; every node sets the same (at least 32 characters: `openssl rand -hex 32`). Needed when nats_listen is not a loopback address, unless route TLS is set",
		func(c *Config) *string { return &c.NATSRouteSecret }),
	str("nats_route_tls_cert", "", "cluster: this node's route certificate (PEM file), signed by nats_route_tls_ca and naming the address other nodes dial; with _key and _ca, routes use TLS and verify both sides",
		func(c *Config) *string { return &c.NATSRouteTLSCert }, nil),
	str("nats_route_tls_key", "", "cluster: the private key of nats_route_tls_cert (PEM file)",
		func(c *Config) *string { return &c.NATSRouteTLSKey }, nil),
	str("nats_route_tls_ca", "", "cluster: the CA (PEM file) that signs every node's route certificate; a route whose peer presents another is refused",
		func(c *Config) *string { return &c.NATSRouteTLSCA }, nil),
	size("disk_warn_free", "1GiB", "warn (log and /metrics chatd_disk_low) while the data folder's disk has less free than this",
		func(c *Config) *int { return &c.DiskWarnFree }),
	intv("retention_days", "0", 0, "delete messages older than this many days, for apps without their own retention_days (0 keeps them)",
		func(c *Config) *int { return &c.RetentionDays }),

	intv("send_rate", "20", 0, "messages one user may send per second, over all devices (0: no limit)",
		func(c *Config) *int { return &c.SendRate }),
	intv("send_burst", "0", 0, "messages one user may send at once before send_rate applies (0: twice send_rate)",
		func(c *Config) *int { return &c.SendBurst }),
	intv("request_rate", "100", 0, "requests of any action one user may make per second, over all devices (0: no limit)",
		func(c *Config) *int { return &c.RequestRate }),
	intv("request_burst", "0", 0, "requests one user may make at once before request_rate applies (0: twice request_rate)",
		func(c *Config) *int { return &c.RequestBurst }),
	intv("max_user_conns", "16", 0, "logged-in WebSocket connections per user; the next login is refused (0: no cap)",
		func(c *Config) *int { return &c.MaxUserConns }),
	dur("webhook_timeout", "10s", "longest one webhook delivery attempt may take (connect, send, answer)",
		func(c *Config) *time.Duration { return &c.WebhookTimeout }),
	dur("webhook_retry_for", "24h", "how long a failing webhook delivery is retried (exponential backoff with jitter) before it is marked failed",
		func(c *Config) *time.Duration { return &c.WebhookRetryFor }),
	intv("webhook_concurrency", "4", 1, "webhook delivery attempts one endpoint may have in flight",
		func(c *Config) *int { return &c.WebhookConcurrency }),
	intv("webhook_outbox_max", "100000", 1, "webhook events and pending deliveries the outbox holds; past it new events are dropped and counted (chatd_webhook_dropped_total)",
		func(c *Config) *int { return &c.WebhookOutboxMax }),
	dur("webhook_debounce", "2s", "window that folds an offline user's messages into one push.offline webhook event",
		func(c *Config) *time.Duration { return &c.WebhookPushDebounce }),
	dur("webhook_keep", "168h", "how long delivered and failed webhook deliveries stay listed",
		func(c *Config) *time.Duration { return &c.WebhookKeep }),
	boolean("webhook_loopback", "false", "let webhook endpoints reach loopback addresses (127.0.0.0/8, ::1)",
		func(c *Config) *bool { return &c.WebhookAllowLoopback }),
	boolean("webhook_private", "false", "let webhook endpoints reach private and link-local addresses (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, fc00::/7, fe80::/10)",
		func(c *Config) *bool { return &c.WebhookAllowPrivate }),
	list("webhook_hosts", "", "when set, the only hosts webhook endpoints may name (host, or .domain for its subdomains)",
		func(c *Config) *[]string { return &c.WebhookAllowedHosts }, checkHostPattern),

	dur("shutdown_timeout", "30s", "longest a graceful stop may take before the process gives up",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
}

func checkHostPattern(v string) error {
	h := strings.TrimPrefix(v, ".")
	if h == "" || strings.ContainsAny(h, "/:@ *") {
		return fmt.Errorf("invalid host %q: give a host name like hooks.example.com, or .example.com for its subdomains", v)
	}
	return nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

func str(name, def, usage string, f func(*Config) *string, check func(string) error, aliases ...string) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "string", Aliases: aliases,
		set: func(c *Config, v string) error {
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*f(c) = v
			return nil
		},
		get: func(c *Config) string { return *f(c) },
	}
}

func secret(name, def, usage string, f func(*Config) *string) *Setting {
	s := str(name, def, usage, f, func(v string) error {
		if v != "" && len(v) < 32 {
			return fmt.Errorf("too short: use at least 32 characters (64 hex digits from `openssl rand -hex 32`)")
		}
		return nil
	})
	s.Secret = true
	return s
}

func addr(name, def, usage string, f func(*Config) *string) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "address",
		set: func(c *Config, v string) error {
			a, err := parseAddr(strings.TrimSpace(v))
			if err != nil {
				return err
			}
			*f(c) = a
			return nil
		},
		get: func(c *Config) string { return *f(c) },
	}
}

func level(name, def, usage string, f func(*Config) *string) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "level",
		set: func(c *Config, v string) error {
			l := strings.ToLower(strings.TrimSpace(v))
			switch l {
			case "trace", "debug", "info", "warn", "error":
				*f(c) = l
				return nil
			}
			return fmt.Errorf("invalid level %q: want trace, debug, info, warn or error", v)
		},
		get: func(c *Config) string { return *f(c) },
	}
}

func intv(name, def string, min int, usage string, f func(*Config) *int) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "int",
		set: func(c *Config, v string) error {
			n, err := parseUint(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("invalid number %q: want a whole number >= %d", v, min)
			}
			if n < min {
				return fmt.Errorf("invalid number %q: must be at least %d", v, min)
			}
			*f(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*f(c)) },
	}
}

func size(name, def, usage string, f func(*Config) *int) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "size",
		set: func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			if n <= 0 {
				return fmt.Errorf("invalid size %q: must be greater than 0", v)
			}
			*f(c) = n
			return nil
		},
		get: func(c *Config) string { return formatSize(*f(c)) },
	}
}

func dur(name, def, usage string, f func(*Config) *time.Duration) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "duration",
		set: func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil {
				return err
			}
			if d <= 0 {
				return fmt.Errorf("invalid duration %q: must be greater than 0", v)
			}
			*f(c) = d
			return nil
		},
		get: func(c *Config) string { return formatDuration(*f(c)) },
	}
}

func boolean(name, def, usage string, f func(*Config) *bool) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "bool",
		set: func(c *Config, v string) error {
			b, err := parseBool(v)
			if err != nil {
				return err
			}
			*f(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*f(c)) },
	}
}

func list(name, def, usage string, f func(*Config) *[]string, check func(string) error) *Setting {
	return &Setting{Name: name, Default: def, Usage: usage, Kind: "list",
		set: func(c *Config, v string) error {
			items := splitList(v)
			for _, it := range items {
				if err := check(it); err != nil {
					return err
				}
			}
			*f(c) = items
			return nil
		},
		get: func(c *Config) string { return strings.Join(*f(c), ",") },
	}
}

// formatDuration is time.Duration.String without zero trailing units:
// 720h, 1h30m, 90s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func checkPositiveDuration(v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("%q: must be more than zero", v)
	}
	return nil
}

func checkRounding(v string) error {
	if v != "minute" && v != "second" {
		return fmt.Errorf("%q: must be minute or second", v)
	}
	return nil
}

// storeSetting is `store`: empty for the bbolt file in the data folder, or
// a PostgreSQL URL. Secret: the URL may carry a password.
func storeSetting() *Setting {
	return secretURL("store", "where chat data lives: empty for <data_dir>/chat.db (bbolt), or a postgres://user:password@host:port/database URL for PostgreSQL (docs/cluster.md)",
		func(c *Config) *string { return &c.Store }, checkStore)
}

// secretURL is a URL setting, empty by default, that prints as a secret
// (it may carry a password).
func secretURL(name, usage string, f func(*Config) *string, check func(string) error) *Setting {
	s := str(name, "", usage, f, check)
	s.Secret = true
	return s
}

func checkStore(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("want empty (the bbolt file <data_dir>/chat.db) or a postgres://user:password@host:port/database URL")
	}
	return nil
}

// natsURLSetting is `nats_url`: an external NATS instead of the embedded
// server. Secret: the URL may carry a user and password.
func natsURLSetting() *Setting {
	return secretURL("nats_url", "cluster: an external NATS (nats://host:4222, several comma-separated) instead of the embedded server",
		func(c *Config) *string { return &c.NATSURL }, checkNATSURL)
}

// checkNodeID accepts what can be one token of a NATS subject.
func checkNodeID(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 64 {
		return fmt.Errorf("%q: at most 64 characters", v)
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q: use letters, digits, - and _ only", v)
		}
	}
	return nil
}

func checkOptionalAddr(v string) error {
	if v == "" {
		return nil
	}
	_, err := parseAddr(v)
	return err
}

func checkRoute(v string) error {
	if !strings.Contains(v, "://") {
		v = "nats://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "nats" || u.Port() == "" {
		return fmt.Errorf("%q: want nats://host:port", v)
	}
	return nil
}

func checkNATSURL(v string) error {
	for _, one := range strings.Split(v, ",") {
		if one = strings.TrimSpace(one); one == "" {
			continue
		}
		u, err := url.Parse(one)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			return errors.New("want nats://host:port (several comma-separated)")
		}
	}
	return nil
}

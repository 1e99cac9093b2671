package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/natefinch/lumberjack.v2"

	"chatd/chat"
	"chatd/cluster"
	"chatd/httpapi"
	"chatd/internal/config"
	"chatd/internal/metrics"
	"chatd/internal/proc"
	"chatd/internal/webhook"
	"chatd/reactor"
	"chatd/storage"
	"chatd/wsproto"
)

// dbFile is the database inside the data folder.
const dbFile = "chat.db"

func cmdServe(ctx context.Context, env *cmdEnv) error {
	return serve(ctx, env, false)
}

// serve runs the server until ctx ends or the admin API asks it to stop.
// daemon selects JSON logs to the rotated log file instead of a console
// on stderr.
func serve(ctx context.Context, env *cmdEnv, daemon bool) error {
	cfg := &env.cfg.Config
	log, closeLog, err := newLogger(cfg, daemon, env.stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	if env.cfg.File != "" {
		log.Info().Str("file", env.cfg.File).Msg("config file loaded")
	}
	for _, w := range env.cfg.Warnings {
		log.Warn().Msg(w)
	}
	eff := zerolog.Dict()
	for _, s := range config.Settings() {
		eff.Str(s.Name, s.Display(cfg))
	}
	// The daemon log records what it ran with; in the foreground the
	// operator just typed it (and `chatd config` shows it), so debug.
	ev := log.Debug()
	if daemon {
		ev = log.Info()
	}
	ev.Dict("config", eff).Msg("effective config (secrets as ***)")

	if err := proc.PrepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	lock, err := proc.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	defer func() {
		if err := lock.Release(); err != nil {
			log.Error().Err(err).Msg("release data folder lock")
		}
	}()
	// A chatd.run left by a crash would point chatctl at a dead server.
	if err := proc.RemoveRunInfo(cfg.DataDir); err != nil {
		return err
	}

	adminKey, err := loadAdminKey(cfg, env.stderr, !daemon)
	if err != nil {
		return err
	}
	if keyFromFlag(env.cfg) {
		log.Warn().Msg(keyFlagWarning)
	}
	if cfg.AdminKey == "" && proc.AdminKeyTooOpen(cfg.DataDir) {
		log.Warn().Str("file", filepath.Join(cfg.DataDir, proc.AdminKeyFile)).
			Msg("admin key file is readable by other users; chmod 600 it")
	}

	ctx, shutdown := context.WithCancel(ctx)
	defer shutdown()
	srv, err := build(cfg, adminKey, log, shutdown, cfg.DemoOn(daemon))
	if err != nil {
		return err
	}
	srv.stack.OnReady = func() error {
		ri := proc.RunInfo{
			PID: os.Getpid(), WSAddr: srv.ws.Addr(), HTTPAddr: srv.http.Addr(), Version: Version(),
			StartedAt: srv.started.UTC().Truncate(time.Millisecond), DataDir: cfg.DataDir,
		}
		if daemon {
			ri.LogFile = cfg.LogPath()
		}
		if err := proc.WriteRunInfo(cfg.DataDir, ri); err != nil {
			return fmt.Errorf("publish %s: %w", proc.RunFile, err)
		}
		log.Info().Int("pid", ri.PID).Str("version", ri.Version).Str("ws", ri.WSAddr).Str("http", ri.HTTPAddr).
			Str("data", cfg.DataDir).Msg("chatd ready")
		if cfg.DemoOn(daemon) {
			log.Info().Str("url", demoURL(ri.HTTPAddr)).Msg("demo pages: open this in a browser on this machine (demo = false turns them off)")
		}
		return nil
	}
	err = srv.stack.Run(ctx)
	if rerr := proc.RemoveRunInfo(cfg.DataDir); rerr != nil {
		log.Error().Err(rerr).Msg("remove run file")
	}
	if err != nil {
		log.Error().Err(err).Msg("chatd stopped with an error")
		return err
	}
	log.Info().Msg("chatd stopped")
	return nil
}

// server is the wired server: its parts and the stack that runs them.
type server struct {
	started time.Time
	store   *storage.Bolt // nil when chat data is in PostgreSQL
	disk    *diskMonitor
	core    *chat.Core
	ws      *reactor.Server
	http    *httpapi.Server
	stack   *proc.Stack
	broker  *cluster.Broker // nil on a single node
}

// build opens the store and wires core, HTTP API and reactor from cfg. The
// stack starts them in that order and stops them in reverse: first the
// core's drain (writes are refused from then on, and every queued one is
// committed and answered, its reply queued to its connection), then the
// reactor (which writes those replies, then closes clients with 1001), the
// HTTP API, the core, the store. Draining before closing is what gives
// every stored send its reply.
func build(cfg *config.Config, adminKey string, log zerolog.Logger, shutdown func(), demo bool) (*server, error) {
	s := &server{started: time.Now()}
	s.disk = newDiskMonitor(cfg.DataDir, cfg.DiskWarnFree, log.With().Str("component", "disk").Logger())
	s.disk.check(true) // says so when starting with little free space
	st, bolt, err := openStore(cfg, log)
	if err != nil {
		return nil, err
	}
	s.store = bolt
	if bolt != nil {
		s.disk.store, s.disk.failed = bolt.DiskFull, bolt.Failed
	}
	broker, err := openCluster(cfg, st, log) // store.go; nil on a single node
	if err != nil {
		st.Close()
		return nil, err
	}
	var bk chat.Broker // stays a nil interface on a single node
	if broker != nil {
		bk = broker
	}
	s.broker = broker
	fail := func(err error) (*server, error) {
		if broker != nil {
			broker.Close()
		}
		st.Close()
		return nil, err
	}
	hooks := webhook.New(webhook.Config{AllowLoopback: cfg.WebhookAllowLoopback, AllowPrivate: cfg.WebhookAllowPrivate,
		AllowedHosts: cfg.WebhookAllowedHosts, UserAgent: "chatd-webhook/" + Version()})
	s.core, err = chat.New(chat.Config{
		SharedStore:     bk != nil,
		Broker:          bk,
		CheckWebhookURL: hooks.CheckURL,
		MaxContent:      cfg.MaxContent,
		TokenTTL:        cfg.TokenTTL,
		HistoryLimit:    cfg.HistoryLimit,
		LoginTimeout:    cfg.HandshakeTimeout,
		JournalSize:     cfg.JournalSize,
		// A reply must fit the outbound queue beside events already in it.
		MaxReply:            cfg.MaxOutbound / 2,
		MaxSessionsListed:   cfg.MaxSessionsListed,
		GroupsPerMinute:     cfg.GroupCreateRate,
		MemberAddsPerMinute: cfg.GroupAddRate,
		RecallWindow:        cfg.RecallWindow,
		EditWindow:          cfg.EditWindow,
		MaxGroupMembers:     cfg.MaxGroupMembers,
		NewMembersFromJoin:  !cfg.GroupJoinHistory,
		DismissHidesHistory: !cfg.DismissedReadable,
		MentionAllMembers:   cfg.MentionAllMembers,
		Consult:             consultConfig(cfg),
		HTTPEventsKeep:      cfg.HTTPEventsKeep,
		HTTPEventsMax:       cfg.HTTPEventsMax,
		MediaHosts:          cfg.MediaURLHosts,
		PresenceDebounce:    cfg.PresenceDebounce,
		LogError:            logError(log.With().Str("component", "core").Logger()),
		Limits: chat.Limits{SendRate: cfg.SendRate, SendBurst: cfg.SendBurst, RequestRate: cfg.RequestRate,
			RequestBurst: cfg.RequestBurst, MaxUserConns: cfg.MaxUserConns},
	}, st)
	if err != nil {
		return fail(fmt.Errorf("core: %w", err))
	}
	s.ws, err = reactor.New(reactor.Config{
		Addr:             cfg.WSAddr,
		Loops:            cfg.Loops,
		MaxConns:         cfg.MaxConns,
		FDReserve:        cfg.FDReserve,
		HandshakeTimeout: cfg.HandshakeTimeout,
		PingInterval:     cfg.PingInterval,
		IdleTimeout:      cfg.IdleTimeout,
		CloseTimeout:     cfg.CloseTimeout,
		MaxMessage:       cfg.MaxMessage,
		MaxOutbound:      cfg.MaxOutbound,
		Handshake: wsproto.HandshakeConfig{
			Origins:           cfg.Origins(),
			Subprotocols:      cfg.Subprotocols,
			EchoFirstProtocol: cfg.EchoFirstProtocol,
			Compression:       cfg.Compression,
		},
		TrustedProxies: cfg.TrustedPrefixes(),
	}, s.core, log.With().Str("component", "reactor").Logger())
	if err != nil {
		return fail(err)
	}
	s.http, err = httpapi.New(httpapi.Config{
		Addr:              cfg.HTTPAddr,
		AdminKey:          adminKey,
		AdminFromAnywhere: cfg.AdminFromAnywhere,
		MaxBody:           cfg.HTTPMaxBody,
		SignatureWindow:   cfg.SignatureWindow,
		SignatureAhead:    cfg.SignatureAhead,
		TrustedProxies:    cfg.TrustedPrefixes(),
		MaxConns:          cfg.HTTPMaxConns,
		MaxConnsPerIP:     cfg.HTTPMaxConnsPerIP,
		ReservedConns:     cfg.HTTPReservedConns,
		ReservedPeers:     cfg.ReservedPrefixes(),
		HeaderTimeout:     cfg.HTTPHeaderTimeout,
		BodyTimeout:       cfg.HTTPBodyTimeout,
		MaxPolls:          cfg.HTTPMaxPolls,
		PollTimeout:       cfg.HTTPPollTimeout,
		MaxPollsPerUser:   cfg.HTTPPollsPerUser,
		CORSOrigins:       cfg.HTTPCORSOrigins,
		UploadDir:         filepath.Join(cfg.DataDir, "uploads"),
		MaxImage:          int64(cfg.UploadMaxImage),
		MaxVoice:          int64(cfg.UploadMaxVoice),
		MaxVideo:          int64(cfg.UploadMaxVideo),
		MaxFile:           int64(cfg.UploadMaxFile),
		UploadQuota:       int64(cfg.UploadQuota),
		MaxUploads:        cfg.UploadMaxConcurrent,
		UploadTimeout:     cfg.UploadTimeout,
		FileURLTTL:        cfg.FileURLTTL,
		UploadGrace:       cfg.UploadGrace,
		Demo:              demo,
		WSAddr:            func() string { return s.ws.Addr() },
		Version:           Version(),
		// /debug/pprof/cmdline shows the arguments without secrets.
		Cmdline:  config.RedactArgs(os.Args),
		Status:   func() httpapi.Status { return s.status(cfg) },
		Shutdown: shutdown,
		Backup:   backupFunc(bolt),
		Metrics: func(w *metrics.Writer) {
			writeWSMetrics(w, s.ws.Stats())
			s.disk.writeMetrics(w)
			s.writeClusterMetrics(w) // clusterstatus.go
		},
	}, s.core, log.With().Str("component", "httpapi").Logger())
	if err != nil {
		return fail(err)
	}
	s.stack = &proc.Stack{
		Components: []proc.Component{
			proc.Closer("store", st.Close),
			proc.Closer("cluster", func() error { // after the core (its bye), before the store
				if broker != nil {
					return broker.Close()
				}
				return nil
			}),
			{Name: "disk monitor", Run: s.disk.Run},
			{Name: "core", Run: s.core.Run},
			{Name: "retention", Run: func(ctx context.Context) error {
				rlog := log.With().Str("component", "retention").Logger()
				return s.core.RunRetention(ctx, chat.RetentionConfig{
					DefaultDays: cfg.RetentionDays,
					Report: func(app string, days, deleted int, err error) {
						if err != nil {
							rlog.Error().Err(err).Str("app", app).Int("retention_days", days).Int("deleted", deleted).
								Msg("retention pass failed; retried at the next one")
							return
						}
						rlog.Info().Str("app", app).Int("retention_days", days).Int("deleted", deleted).
							Msg("deleted messages older than the app's retention")
					},
				})
			}},
			{Name: "http api", Run: s.http.Run, Ready: s.http.Ready()},
			{Name: "websocket", Run: s.ws.Run, Ready: s.ws.Ready()},
			{Name: "server info", Run: (&metrics.InfoPublisher{
				Core: s.core, Version: Version(), StartedAt: s.started,
				Transport: func() metrics.Transport { return transportFigures(s.ws.Stats()) },
			}).Run},
			{Name: "drain", Run: func(ctx context.Context) error {
				<-ctx.Done()
				return s.drain(drainTimeout(cfg.ShutdownTimeout))
			}},
			// Last: stopped first, while the journal still takes its
			// final write (the results of attempts in flight).
			{Name: "webhooks", Run: func(ctx context.Context) error {
				return s.core.RunWebhooks(ctx, chat.WebhookConfig{
					Sender: hooks, Timeout: cfg.WebhookTimeout, RetryFor: cfg.WebhookRetryFor,
					Concurrency: cfg.WebhookConcurrency, MaxOutbox: cfg.WebhookOutboxMax,
					PushDebounce: cfg.WebhookPushDebounce, Keep: cfg.WebhookKeep,
				})
			}},
		},
		StopTimeout: cfg.ShutdownTimeout,
		Log:         log,
	}
	return s, nil
}

// drainTimeout is how long the stop waits for the journal to commit and
// answer what is queued: half the stop's budget, so that a stalled disk
// still leaves time to close the clients and the listeners.
func drainTimeout(stop time.Duration) time.Duration {
	if stop <= 0 {
		stop = 30 * time.Second
	}
	return stop / 2
}

// drain is the first step of a stop (see build).
func (s *server) drain(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.core.Drain(ctx)
}

// logError adapts log to the core's and the store's error hook: one
// error line per call naming what failed (a nil err is news that the
// failure is over, at info).
func logError(log zerolog.Logger) func(what string, err error) {
	return func(what string, err error) {
		if err == nil {
			log.Info().Msg(what)
			return
		}
		log.Error().Err(err).Str("what", what).Msg(what + " failed")
	}
}

// status answers GET /admin/v1/status.
func (s *server) status(cfg *config.Config) httpapi.Status {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return httpapi.Status{
		Version:       Version(),
		PID:           os.Getpid(),
		StartedAt:     s.started.Unix(),
		UptimeSeconds: int64(time.Since(s.started) / time.Second),
		WSAddr:        s.ws.Addr(),
		HTTPAddr:      s.http.Addr(),
		DataDir:       cfg.DataDir,
		Conns:         int(s.ws.Stats().Conns),
		UsersOnline:   s.core.Stats().UsersOnline,
		Goroutines:    runtime.NumGoroutine(),
		HeapBytes:     ms.HeapAlloc,
		RSSBytes:      metrics.RSS(),
		Cluster:       s.clusterStatus(cfg), // clusterstatus.go; nil on a single node
	}
}

// loadAdminKey returns the configured admin key, or the data folder's
// admin.key, creating it on first start (and telling the operator what to
// do next when tell is set).
func loadAdminKey(cfg *config.Config, w io.Writer, tell bool) (string, error) {
	if cfg.AdminKey != "" {
		return cfg.AdminKey, nil
	}
	key, created, err := proc.EnsureAdminKey(cfg.DataDir)
	if err != nil {
		return "", err
	}
	if created && tell {
		printKeyCreated(w, cfg.DataDir)
	}
	return key, nil
}

func printKeyCreated(w io.Writer, dataDir string) {
	fmt.Fprintf(w, "created admin key at %s (keep it secret: it controls the server)\n",
		filepath.Join(dataDir, proc.AdminKeyFile))
	fmt.Fprintf(w, "next, register your site as an app (README.md, step 2):\n  %s\n", currentInvocation().nextAppCreate(dataDir))
}

// newLogger builds the process logger: a console on stderr in the
// foreground, JSON lines to the rotated log file in daemon mode. The close
// function flushes and closes the file.
func newLogger(cfg *config.Config, daemon bool, stderr io.Writer) (zerolog.Logger, func(), error) {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return zerolog.Nop(), nil, fmt.Errorf("log_level: %w", err)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	if !daemon {
		w := zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000", NoColor: !isTerminal(stderr)}
		return zerolog.New(w).Level(level).With().Timestamp().Logger(), func() {}, nil
	}
	path := cfg.LogPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return zerolog.Nop(), nil, fmt.Errorf("log file: %w", err)
	}
	lj := &lumberjack.Logger{
		Filename:   path,
		MaxSize:    cfg.LogMaxSizeMB,
		MaxBackups: cfg.LogMaxBackups,
		MaxAge:     cfg.LogMaxAgeDays,
	}
	log := zerolog.New(lj).Level(level).With().Timestamp().Int("pid", os.Getpid()).Logger()
	return log, func() { lj.Close() }, nil
}

// isTerminal reports whether w is a character device (a terminal), where
// colours help; files and pipes get plain text.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

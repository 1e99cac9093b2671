// Package chat is chatd's core: everything a user can do, as one Go API that
// both transports (the WebSocket reactor and the HTTP API) call.
//
// It knows nothing of sockets or disks: connections arrive as Peers, storage
// is the Store interface. Standard library imports only.
//
// Who owns what:
//   - Client.queue, Client.running, Client.closed: Client.mu, any goroutine.
//     A Client's actions run one at a time, in arrival order, on a drain
//     worker that holds the client only while it has queued work; an idle
//     worker waits (Core.idle) for the next client that needs one, and
//     exits after workerIdle.
//   - user.clients: an immutable snapshot swapped under user.mu; fan-out
//     reads it without locking.
//   - sess.roster: an immutable snapshot swapped under sess.mu.
//   - Core.users, Core.sessions, Core.pairs: Core.mu (cache maps; entries
//     are never removed while the process runs).
//   - the seq counters and the CID check: the journal goroutine alone.
//   - Core.unauth (connections awaiting login): Core.unauthMu.
//   - Core.expiry (logged-in connections' token expiries): its own mu, a
//     leaf; the sweeper closes what falls due.
//   - Core.groupLimits (per-user group budgets): its own mu, a leaf,
//     taken under sess.mu by group_add.
//
// Lock order (LOCKS.md): createLocks[i], appMu or sess.mu may be held across
// store reads, a journal write and Peer sends, and may take the leaf locks
// Core.mu, user.mu and Bus.mu; the leaves take nothing. The journal and the
// deliverer take none of the outer locks.
package chat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes the core. Zero values mean the documented defaults.
type Config struct {
	// SharedStore says that other chatd nodes write the same store (a
	// cluster, docs/cluster.md): the store must implement SharedStore,
	// and seqs and session ids are then decided by it (shared.go).
	SharedStore bool
	// Broker joins this node to the other nodes of a cluster (broker.go,
	// docs/cluster.md): events reach their connections through it.
	// It needs SharedStore. Nil means a single node, and costs nothing.
	Broker Broker
	// MaxContent caps one message's content JSON in bytes. Zero means 32 KiB.
	MaxContent int
	// TokenTTL is the default chat token lifetime. Zero means 30 days.
	TokenTTL time.Duration
	// HistoryLimit is the default page size of history and sync. Zero means
	// 50. Callers may ask for up to MaxPage.
	HistoryLimit int
	// LoginTimeout closes a connection that has not logged in by then with
	// close code 4001. Zero means 10 s.
	LoginTimeout time.Duration
	// JournalSize bounds writes waiting for the journal. Zero means 65536:
	// over a second of backlog at the target rate, so a full journal means
	// the disk cannot keep up; senders then get `unavailable` instead of
	// unbounded memory growth.
	JournalSize int
	// MaxBatch caps the writes in one group commit. Zero means 4096: big
	// enough that one fsync serves hundreds of thousands of messages a
	// second, small enough that a commit stays well under a millisecond.
	MaxBatch int
	// MaxQueue caps the actions one connection may have waiting. Zero means
	// 256; past it requests are answered `rate_limited`.
	MaxQueue int
	// MaxReply caps one reply's size in bytes: a reply larger than the
	// transport's outbound limit would close the connection that asked
	// (1008), every time it asked. Zero means 512 KiB (half of the
	// default outbound limit, leaving room for events queued beside it).
	MaxReply int
	// MaxSessionsListed caps the sessions one `sessions` page lists (the
	// reply's next_cursor continues the list; sessionlist.go). Zero means 1000.
	MaxSessionsListed int
	// GroupsPerMinute caps the groups one user creates per minute through
	// the client API. Zero means 20.
	GroupsPerMinute int
	// MemberAddsPerMinute caps the members one user adds to groups per
	// minute through the client API, those named at creation included.
	// Zero means 200.
	MemberAddsPerMinute int
	// RecallWindow is how long after sending a sender may recall a
	// message (group owners, admins and the host may at any time). Zero
	// means 2 minutes.
	RecallWindow time.Duration
	// EditWindow is how long after sending a sender may edit a text or
	// rich message. Zero means 15 minutes.
	EditWindow time.Duration
	// MaxGroupMembers caps a group's members. Zero means 10,000.
	MaxGroupMembers int
	// NewMembersFromJoin: members added to a group see its history from
	// their join on; false (the default) lets them read all of it.
	NewMembersFromJoin bool
	// DismissHidesHistory: a dismissed group's history can no longer be
	// read by its members; false (the default) keeps it readable.
	DismissHidesHistory bool
	// MentionAllMembers lets every group member mention everyone
	// (mention_all); false (the default) keeps it to owners and admins.
	MentionAllMembers bool
	// CheckWebhookURL applies the target-host rules to a webhook
	// endpoint's URL when it is registered (the sender checks the
	// resolved address again at every dial). Nil checks the URL's shape
	// only.
	CheckWebhookURL func(rawURL string) error
	// HTTPEventsKeep is how long a user's HTTP device (httpdevice.go)
	// outlives its last read: its ring keeps collecting events, so a
	// client polling at least this often misses none. Zero means 5
	// minutes.
	HTTPEventsKeep time.Duration
	// HTTPEventsMax caps the events one HTTP device keeps. Zero means 1000.
	HTTPEventsMax int
	// HTTPEventsBytes caps the bytes of the events one HTTP device keeps.
	// Zero means 1 MiB.
	HTTPEventsBytes int
	// MediaHosts, when not empty, are the only hosts an external URL in
	// an image, voice, video or file message, or a user's avatar, may
	// name ("cdn.example.com", or "*.example.com" for its subdomains).
	// Uploads (chatd-file:) are not external. Empty allows any http(s)
	// host.
	MediaHosts []string
	// PresenceDebounce is how long a user's online state must hold before
	// friends and peers are told (presence.go): a connection that drops
	// and returns within it is never announced. Zero means 5 s; negative
	// turns presence events off (queries still answer).
	PresenceDebounce time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Consult tunes timed consultations (consult_service.go).
	Consult ConsultConfig
	// LogError receives every failure the core answers `internal` for,
	// once, with what failed (a store read of an action, a commit); the
	// client is told only that it happened. Nil means the standard
	// library's log package. Called from any goroutine; must not block.
	LogError func(what string, err error)
	// Limits are the per-user abuse limits (limits.go).
	Limits Limits
}

// MaxPage is the largest history or sync page a client may ask for.
const MaxPage = 500

func (c *Config) fill() {
	if c.MaxContent <= 0 {
		c.MaxContent = 32 << 10
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 30 * 24 * time.Hour
	}
	if c.HistoryLimit <= 0 {
		c.HistoryLimit = 50
	}
	if c.HistoryLimit > MaxPage {
		c.HistoryLimit = MaxPage
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 10 * time.Second
	}
	if c.JournalSize <= 0 {
		c.JournalSize = 65536
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 4096
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TokenTTL > MaxTokenTTL {
		c.TokenTTL = MaxTokenTTL
	}
	if c.MaxReply <= 0 {
		c.MaxReply = 512 << 10
	}
	if c.MaxSessionsListed <= 0 {
		c.MaxSessionsListed = 1000
	}
	if c.GroupsPerMinute <= 0 {
		c.GroupsPerMinute = 20
	}
	if c.PresenceDebounce == 0 {
		c.PresenceDebounce = 5 * time.Second
	}
	if c.MemberAddsPerMinute <= 0 {
		c.MemberAddsPerMinute = 200
	}
	if c.HTTPEventsKeep <= 0 {
		c.HTTPEventsKeep = 5 * time.Minute
	}
	if c.HTTPEventsMax <= 0 {
		c.HTTPEventsMax = DefaultHTTPEventsMax
	}
	if c.HTTPEventsBytes <= 0 {
		c.HTTPEventsBytes = DefaultHTTPEventsBytes
	}
	if c.MaxGroupMembers <= 0 {
		c.MaxGroupMembers = 10000
	}
	if c.RecallWindow <= 0 {
		c.RecallWindow = recallWindowDefault
	}
	if c.EditWindow <= 0 {
		c.EditWindow = editWindowDefault
	}
	if c.LogError == nil {
		c.LogError = func(what string, err error) { log.Printf("chat: %s failed: %v", what, err) }
	}
}

// Core is the chat server's state and rules. Create it with New, start it
// with Run.
type Core struct {
	cfg   Config
	store Store

	journal chan *op // see Config.JournalSize
	deliver chan []*op
	spare   chan []*op // batches' op slices, back from the deliverer for reuse
	// delivering counts batches handed to the deliverer and not yet
	// finished: the journal adds, the deliverer subtracts once a batch is
	// fully answered. At zero the journal may deliver a batch itself
	// without overtaking an earlier one (see commit).
	delivering atomic.Int32
	tracer     atomic.Pointer[msgTracer] // a running message trace (StartTrace, msgtrace.go), or nil
	closing    atomic.Bool
	submitMu   sync.RWMutex // read-held across "not closing?" + enqueue; the journal write-locks to close
	running    atomic.Bool
	drainReq   chan struct{} // closed by Drain: the journal stops taking writes
	drainOnce  sync.Once
	drained    chan struct{} // closed once every queued write is committed and answered
	done       chan struct{} // closed when Run has drained and returned

	appMu sync.Mutex // serialises app creation (id uniqueness)

	mu       sync.Mutex // guards users, sessions, pairs, system
	users    map[string]*appUsers
	sessions map[SessionID]*sess
	pairs    map[string]SessionID // app\x00a\x00b → private session
	system   map[string]SessionID // app\x00uid → system session

	nextSession atomic.Uint64
	shared      SharedStore    // set when Config.SharedStore: other nodes write the store too (shared.go)
	sharedIDs   sessionIDs     // this node's reserved block of session ids (shared.go)
	cluster     *cluster       // set when Config.Broker: the other nodes' connections (broker.go)
	owner       *owner         // set when Config.Broker: who runs customer service and consultations (owner.go)
	createLocks [64]sync.Mutex // striped: serialises find-or-create of private/system sessions, and each user's push

	unauthMu sync.Mutex
	unauth   map[*Client]int64 // attached, not logged in → attach time (unix ns)

	// idle hands a client with work to a drain worker that is waiting for
	// one (unbuffered: a send succeeds only if a worker is ready; else a
	// new worker starts). See Client.HandleMessage.
	idle chan *Client

	bus   *Bus
	hists *storeHists // journal commit metrics (metrics.go)

	expiry      tokenExpiry   // logged-in connections' token expiries (tokenexpiry.go)
	groupLimits groupLimits   // per-user group creation and member-add budgets (limits_group.go)
	bcast       broadcasts    // broadcast channels and audiences (broadcast.go)
	ph          presenceHooks // user.online/user.offline events (webhook_presence.go)
	lim         limiter       // per-user limits (limits.go); immutable after New
	mod         moderator     // bans and mutes (moderation.go)
	quotas      quotas        // per-app caps on users and groups (limits.go)
	contacts    contactBook   // friends, requests, blocks, app settings (contacts.go)

	presence presenceBook // debounced presence, last seen, typing limits (presence.go, typing.go)

	wh      *webhooks    // webhook endpoints and the outbox's counters (webhooks.go, outbox.go)
	consult consultState // timed consultations (consult_service.go)
	svc     *svcState    // customer service: shops, agents, conversations (service.go)

	filesMu sync.Mutex // serialises the read-modify-write of an app's upload usage (files.go)

	httpMu   sync.Mutex             // guards httpDevs
	httpDevs map[string]*HTTPDevice // userKey → the user's HTTP device (httpdevice.go); nil until the first

	stats counters
}

type counters struct {
	clients     atomic.Int64
	online      atomic.Int64
	usersOnline atomic.Int64
	messagesIn  atomic.Uint64
	deliveries  atomic.Uint64
	dropped     atomic.Uint64
	commits     atomic.Uint64
	commitNanos atomic.Int64
	lastBatch   atomic.Int64
	logins      atomic.Uint64
	loginFails  atomic.Uint64
	presence    atomic.Uint64    // presence events queued to devices
	errors      [9]atomic.Uint64 // by Codes index
	limited     [5]atomic.Uint64 // refusals by LimitKinds index
}

// Stats are the core's live figures.
type Stats struct {
	Clients       int           // attached connections
	Online        int           // logged-in connections
	UsersOnline   int           // distinct users with at least one device
	MessagesIn    uint64        // messages accepted (durable)
	Deliveries    uint64        // message events queued to peers
	Dropped       uint64        // events a peer refused (slow consumer)
	Logins        uint64        // successful logins
	LoginFailures uint64        // failed logins
	JournalDepth  int           // writes waiting for the journal
	Commits       uint64        // group commits
	LastCommit    time.Duration // duration of the newest commit
	LastBatch     int           // writes in the newest commit
	Tracing       bool          // a message trace runs (StartTrace)
	Presence      uint64        // presence events queued to devices (presence.go)
	Errors        map[Code]uint64
	Limited       map[string]uint64 // refusals by limit kind (LimitKinds)
}

// New builds a core on st. Call Run before serving.
func New(cfg Config, st Store) (*Core, error) {
	if st == nil {
		return nil, errors.New("chat: nil store")
	}
	cfg.fill()
	max, err := st.MaxSessionID(context.Background())
	if err != nil {
		return nil, fmt.Errorf("chat: read max session id: %w", err)
	}
	c := &Core{
		cfg:      cfg,
		store:    st,
		journal:  make(chan *op, cfg.JournalSize),
		deliver:  make(chan []*op, 64),
		spare:    make(chan []*op, 8),
		drainReq: make(chan struct{}),
		drained:  make(chan struct{}),
		done:     make(chan struct{}),
		users:    make(map[string]*appUsers),
		sessions: make(map[SessionID]*sess),
		pairs:    make(map[string]SessionID),
		system:   make(map[string]SessionID),
		unauth:   make(map[*Client]int64),
		idle:     make(chan *Client),
	}
	c.bus = newBus()
	c.hists = newStoreHists()
	c.lim = newLimiter(cfg.Limits)
	if err := c.loadModeration(context.Background()); err != nil {
		return nil, err
	}
	c.wh = newWebhooks()
	if err := c.loadWebhooks(context.Background()); err != nil {
		return nil, fmt.Errorf("chat: load webhook endpoints: %w", err)
	}
	if err := c.presenceRestart(context.Background()); err != nil {
		return nil, fmt.Errorf("chat: write the offline events of the users online at the last stop: %w", err)
	}
	c.nextSession.Store(uint64(max))
	if cfg.SharedStore {
		ss, ok := st.(SharedStore)
		if !ok {
			return nil, fmt.Errorf("chat: Config.SharedStore is set but the store (%T) cannot be shared by several nodes", st)
		}
		c.shared = ss
		if err := c.claimEventTag(context.Background()); err != nil { // whtag.go
			return nil, fmt.Errorf("chat: take a webhook event id tag: %w", err)
		}
	}
	if cfg.Broker != nil {
		if c.shared == nil {
			return nil, errors.New("chat: Config.Broker needs Config.SharedStore: the nodes of a cluster share one store")
		}
		c.cluster = newCluster(c, cfg.Broker)
		c.owner = newOwner(c)
	}
	c.consult.init(cfg.Consult)
	c.svc = newSvcState()
	if c.owner == nil { // in a cluster, loaded by the node that takes the domains lease (owner.go)
		if err := c.loadConsults(context.Background()); err != nil {
			return nil, fmt.Errorf("chat: load consultations: %w", err)
		}
		if err := c.svcLoad(context.Background()); err != nil {
			return nil, fmt.Errorf("chat: load customer service state: %w", err)
		}
	}
	if c.cluster != nil {
		if err := c.cluster.start(); err != nil { // broker.go
			return nil, fmt.Errorf("chat: subscribe to the cluster's broker: %w", err)
		}
		// What was loaded eagerly above may have changed on another node
		// before this one subscribed (NATS replays nothing): read it again
		// now that every later change is heard (coherent.go).
		if err := c.reloadEagerCaches(context.Background()); err != nil {
			return nil, fmt.Errorf("chat: reload after joining the cluster: %w", err)
		}
		c.owner.look(context.Background()) // owner.go: who owns the domains, before the first request
	}
	return c, nil
}

// Run runs the journal (group commit), the delivery goroutine and the login
// sweeper. It returns after ctx is done and every queued write has been
// committed and acknowledged.
func (c *Core) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("chat: Run called twice")
	}
	delivered := make(chan struct{})
	go func() {
		c.runDeliver()
		close(delivered)
	}()
	sweepDone := make(chan struct{})
	go func() {
		c.runSweeper(ctx)
		close(sweepDone)
	}()
	clockDone := make(chan struct{})
	svcDone := make(chan struct{})
	if c.owner == nil {
		go func() {
			c.runConsultClock(ctx)
			close(clockDone)
		}()
		go func() {
			c.runService(ctx)
			close(svcDone)
		}()
	} else {
		close(clockDone)
		go func() {
			c.owner.run(ctx) // owner.go: both, while this node holds the domains lease
			close(svcDone)
		}()
	}
	phDone := make(chan struct{})
	go func() {
		c.runPresenceHooks(ctx)
		close(phDone)
	}()
	tagDone := make(chan struct{})
	go func() {
		if c.shared != nil {
			c.runEventTag(ctx) // whtag.go
		}
		close(tagDone)
	}()
	clusterDone := make(chan struct{})
	go func() {
		if c.cluster != nil {
			c.cluster.run(ctx) // broker.go
		}
		close(clusterDone)
	}()
	err := c.runJournal(ctx)
	<-svcDone
	<-phDone
	close(c.deliver)
	<-delivered
	close(c.drained)
	<-sweepDone
	<-clockDone
	<-clusterDone
	<-tagDone
	close(c.done)
	return err
}

// Drain is the first step of a graceful stop: from now on writes (sends,
// and every other change) are refused `unavailable` "server is stopping";
// the writes already queued are committed, and every one is answered —
// its reply queued to its connection, its caller woken — before Drain
// returns. Reads are still served until Run's ctx ends. The transports
// close their clients after Drain, so a stored send is never left without
// its reply. Drain returns ctx's error if that takes longer (a stalled
// disk), or at once if Run is not running.
func (c *Core) Drain(ctx context.Context) error {
	if !c.running.Load() {
		return nil
	}
	c.drainOnce.Do(func() {
		// The running consultations' clocks are saved first, while
		// writes are still taken (the restart rule, docs/consultations.md).
		if err := c.consultCheckpoint(ctx); err != nil {
			c.cfg.LogError("consultation checkpoint at stop", err)
		}
		// Everyone still online goes offline, for the webhooks, while
		// writes are still taken (webhook_presence.go).
		c.flushPresence(ctx, true)
		close(c.drainReq)
	})
	select {
	case <-c.drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chat: drain: %d writes still queued: %w", len(c.journal), ctx.Err())
	}
}

// Stats returns a snapshot of the core's counters.
func (c *Core) Stats() Stats {
	s := Stats{
		Clients:       int(c.stats.clients.Load()),
		Online:        int(c.stats.online.Load()),
		UsersOnline:   int(c.stats.usersOnline.Load()),
		MessagesIn:    c.stats.messagesIn.Load(),
		Deliveries:    c.stats.deliveries.Load(),
		Dropped:       c.stats.dropped.Load(),
		Logins:        c.stats.logins.Load(),
		LoginFailures: c.stats.loginFails.Load(),
		JournalDepth:  len(c.journal),
		Commits:       c.stats.commits.Load(),
		LastCommit:    time.Duration(c.stats.commitNanos.Load()),
		LastBatch:     int(c.stats.lastBatch.Load()),
		Tracing:       c.tracer.Load() != nil,
		Presence:      c.stats.presence.Load(),
		Errors:        make(map[Code]uint64, len(Codes)),
	}
	for i, code := range Codes {
		s.Errors[code] = c.stats.errors[i].Load()
	}
	s.Limited = make(map[string]uint64, len(LimitKinds))
	for i, k := range LimitKinds {
		s.Limited[k] = c.stats.limited[i].Load()
	}
	return s
}

func (c *Core) countError(code Code) {
	for i, k := range Codes {
		if k == code {
			c.stats.errors[i].Add(1)
			return
		}
	}
}

func (c *Core) nowMS() int64 { return c.cfg.Now().UnixMilli() }

// ---- tokens

// HashToken is how a token is stored: SHA-256 of its string.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func newToken() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("chat: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newSecret() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("chat: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

func userKey(app, uid string) string { return app + "\x00" + uid }

func pairKey(app, a, b string) string {
	if b < a {
		a, b = b, a
	}
	return app + "\x00" + a + "\x00" + b
}

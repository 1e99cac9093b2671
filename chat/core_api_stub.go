package chat

// TEMPORARY: signatures the helpers code against while the bodies are written.
// Replaced by the real implementation before anything lands.

import (
	"context"
	"time"
)

// Config tunes the core. Zero values mean the documented defaults.
type Config struct {
	// MaxContent caps one message's content JSON in bytes. Zero means 32 KiB.
	MaxContent int
	// TokenTTL is the default chat token lifetime. Zero means 30 days.
	TokenTTL time.Duration
	// HistoryLimit is the default page size of history and sync. Zero means
	// 50; callers may ask for up to 500.
	HistoryLimit int
	// JournalSize bounds queued writes. Zero means 65536.
	JournalSize int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

type Core struct{}

func New(cfg Config, st Store) (*Core, error)                               { panic("stub") }
func (c *Core) Run(ctx context.Context) error                               { panic("stub") }
func (c *Core) Accept(p Peer) Handler                                       { panic("stub") }
func (c *Core) CreateApp(ctx context.Context, id, name string) (App, error) { panic("stub") }
func (c *Core) App(ctx context.Context, id string) (App, error)             { panic("stub") }
func (c *Core) Apps(ctx context.Context) ([]App, error)                     { panic("stub") }
func (c *Core) PushUser(ctx context.Context, app string, in UserInput) (User, error) {
	panic("stub")
}
func (c *Core) User(ctx context.Context, app, uid string) (User, error) { panic("stub") }
func (c *Core) IssueToken(ctx context.Context, app, uid string, ttl time.Duration) (TokenGrant, error) {
	panic("stub")
}
func (c *Core) RevokeToken(ctx context.Context, app, token string) error { panic("stub") }
func (c *Core) RevokeUserTokens(ctx context.Context, app, uid string) (kicked int, err error) {
	panic("stub")
}
func (c *Core) Send(ctx context.Context, app string, in SendInput) (SendResult, error) {
	panic("stub")
}
func (c *Core) CreateGroup(ctx context.Context, app string, in GroupInput) (Session, error) {
	panic("stub")
}
func (c *Core) History(ctx context.Context, app string, id SessionID, before uint64, limit int) ([]Message, error) {
	panic("stub")
}
func (c *Core) Login(ctx context.Context, app, token string) (Identity, error) { panic("stub") }

// Do runs one client action (the WebSocket request JSON) for a logged-in
// identity and returns the reply JSON. Used by the HTTP user API.
func (c *Core) Do(ctx context.Context, id Identity, req []byte) []byte { panic("stub") }

// Stats is a snapshot of the core's counters.
func (c *Core) Stats() Stats { panic("stub") }

// Stats are the core's live figures.
type Stats struct {
	Clients       int    // attached connections
	Online        int    // logged-in connections
	UsersOnline   int    // distinct users with at least one device
	MessagesIn    uint64 // messages accepted (durable)
	Deliveries    uint64 // message events queued to peers
	JournalDepth  int    // writes waiting for the journal
	LastCommitDur time.Duration
	Commits       uint64
}

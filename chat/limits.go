package chat

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits are the per-user abuse limits. The zero value limits nothing
// (the core's tests and embedders opt in); chatd's settings turn them on
// (send_rate, request_rate, max_user_conns in docs/operations.md).
//
// The rates are token buckets kept per user (not per connection), shared by
// all of the user's devices and the HTTP user API, on the core's clock.
type Limits struct {
	// SendRate is the messages a user may send per second, sustained.
	// Zero (or less) means no limit.
	SendRate int
	// SendBurst is how many messages a user may send at once before
	// SendRate applies. Zero means 2 × SendRate.
	SendBurst int
	// RequestRate is the requests of any action (sends included) a user
	// may make per second, sustained. Zero (or less) means no limit.
	RequestRate int
	// RequestBurst is how many requests a user may make at once. Zero
	// means 2 × RequestRate.
	RequestBurst int
	// MaxUserConns caps one user's logged-in WebSocket connections; the
	// next login is refused. Zero (or less) means no cap.
	MaxUserConns int
}

func (l *Limits) fill() {
	l.SendRate, l.RequestRate, l.MaxUserConns = max(l.SendRate, 0), max(l.RequestRate, 0), max(l.MaxUserConns, 0)
	if l.SendBurst <= 0 {
		l.SendBurst = 2 * l.SendRate
	}
	if l.RequestBurst <= 0 {
		l.RequestBurst = 2 * l.RequestRate
	}
}

// Limit kinds, as /metrics labels them (chatd_limited_total{limit=…}) and
// as refusals name them.
const (
	LimitSend      = "send"       // Limits.SendRate
	LimitRequest   = "request"    // Limits.RequestRate
	LimitUserConns = "user_conns" // Limits.MaxUserConns
	LimitAppUsers  = "app_users"  // AppLimits.MaxUsers
	LimitAppGroups = "app_groups" // AppLimits.MaxGroups
)

// LimitKinds lists every limit kind, for metrics.
var LimitKinds = []string{LimitSend, LimitRequest, LimitUserConns, LimitAppUsers, LimitAppGroups}

func limitIndex(kind string) int {
	for i, k := range LimitKinds {
		if k == kind {
			return i
		}
	}
	return -1
}

// limited counts one refusal by a limit.
func (c *Core) limited(kind string) {
	if i := limitIndex(kind); i >= 0 {
		c.stats.limited[i].Add(1)
	}
}

// rate is one token-bucket limit in the GCRA form: a bucket is a single
// int64, the "theoretical arrival time" (TAT) of the next request in
// nanoseconds on the core's clock. A request at now is allowed when
// max(TAT, now) + interval - now <= burst × interval, and moves TAT there.
// One CompareAndSwap per request, no lock, integer arithmetic only.
type rate struct {
	interval  int64 // ns per token; 0: the limit is off
	tolerance int64 // burst × interval
	perSec    int
	burst     int
}

func newRate(perSec, burst int) rate {
	if perSec <= 0 {
		return rate{}
	}
	perSec = min(perSec, int(time.Second)) // an interval of at least 1 ns
	burst = max(burst, 1)
	iv := int64(time.Second) / int64(perSec)
	return rate{interval: iv, tolerance: iv * int64(burst), perSec: perSec, burst: burst}
}

// take takes one token from the bucket b at now (ns). It returns 0 when
// allowed, else how long until a token is there (ns, > 0).
func (r *rate) take(b *atomic.Int64, now int64) int64 {
	if r.interval == 0 {
		return 0
	}
	for {
		old := b.Load()
		tat := max(old, now)
		next := tat + r.interval
		if wait := next - now - r.tolerance; wait > 0 {
			return wait
		}
		if b.CompareAndSwap(old, next) {
			return 0
		}
	}
}

// limiter is the core's limits, ready for the hot path.
type limiter struct {
	send, req rate
	maxConns  int // 0: no cap
	cfg       Limits
}

func newLimiter(l Limits) limiter {
	l.fill()
	return limiter{
		send:     newRate(l.SendRate, l.SendBurst),
		req:      newRate(l.RequestRate, l.RequestBurst),
		maxConns: max(l.MaxUserConns, 0),
		cfg:      l,
	}
}

// clock returns the core's clock in nanoseconds, read into *now the first
// time: one message's request and send checks share one reading (a clock
// read cost ~110 ns on the 2-core box, more than the rest of a check).
func (c *Core) clock(now *int64) int64 {
	if *now == 0 {
		*now = c.cfg.Now().UnixNano()
	}
	return *now
}

// allowRequest takes a request token of u's; a refusal is an *Error with
// code rate_limited and RetryAfter set. now is a lazy clock reading
// (see clock); with the limit off the clock is not read.
func (c *Core) allowRequest(u *user, now *int64) *Error {
	if c.lim.req.interval == 0 {
		return nil
	}
	if wait := c.lim.req.take(&u.reqTAT, c.clock(now)); wait > 0 {
		return c.rateRefusal(LimitRequest, &c.lim.req, "requests", wait)
	}
	return nil
}

// allowSend takes a send token of u's.
func (c *Core) allowSend(u *user, now *int64) *Error {
	if c.lim.send.interval == 0 {
		return nil
	}
	if wait := c.lim.send.take(&u.sendTAT, c.clock(now)); wait > 0 {
		return c.rateRefusal(LimitSend, &c.lim.send, "messages", wait)
	}
	return nil
}

// rateRefusal builds the rate_limited error (cold: only on a refusal).
func (c *Core) rateRefusal(kind string, r *rate, what string, wait int64) *Error {
	c.limited(kind)
	ms := (wait + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return &Error{Code: CodeRateLimited, RetryAfter: ms,
		Message: kind + " rate limit: at most " + strconv.Itoa(r.perSec) + " " + what + "/s per user (burst " +
			strconv.Itoa(r.burst) + "); retry after " + strconv.FormatInt(ms, 10) + " ms"}
}

// overConns reports whether u may not add another device: it has
// Limits.MaxUserConns already. Login checks it before registering the
// device, and again after (see login), so concurrent logins of one user
// cannot pass the cap together.
func (c *Core) overConns(u *user, extra int) bool {
	return c.lim.maxConns > 0 && len(u.online())+extra > c.lim.maxConns
}

// connsRefusal is the error of a login over Limits.MaxUserConns.
func (c *Core) connsRefusal(uid string) *Error {
	c.limited(LimitUserConns)
	return Errf(CodeForbidden, "user_conns limit: user \""+clip(uid, 64)+"\" already has "+strconv.Itoa(c.lim.maxConns)+
		" connections (the most per user); close one and log in again")
}

// LimitsConfig returns the limits in force (defaults filled in).
func (c *Core) LimitsConfig() Limits { return c.lim.cfg }

// refund gives back a token taken from b (a request that took the fast
// path's token and then went the queued way, which takes it again).
func (r *rate) refund(b *atomic.Int64) {
	if r.interval != 0 {
		b.Add(-r.interval)
	}
}

// allowUserSend checks a user's own send: not muted, within the send
// rate. The host's server-API sends are not limited.
func (c *Core) allowUserSend(cl *Client, now *int64) *Error {
	if e := c.mutedErr(cl.id.App, cl.id.UID); e != nil {
		return e
	}
	return c.allowSend(cl.u, now)
}

// loginRaced is login's second look, once cl is registered: a ban or a
// connection cap that a concurrent change let pass the first check (the
// user banned, or another device logged in, meanwhile) closes cl now.
func (c *Core) loginRaced(cl *Client) bool {
	if c.bannedErr(cl.id.App, cl.id.UID) != nil {
		c.logout(cl, "banned")
		cl.peer.Close(CloseBanned, "banned")
		return true
	}
	if c.overConns(cl.u, 0) {
		c.limited(LimitUserConns)
		c.logout(cl, "user_conns")
		cl.peer.Close(ClosePolicy, "too many connections for this user")
		return true
	}
	return false
}

// appendErrorFull encodes an error reply, with retry_after when set.
func appendErrorFull(dst []byte, id []byte, e *Error) []byte {
	if e.RetryAfter <= 0 {
		return appendError(dst, id, e.Code, e.Message)
	}
	dst = appendReplyTo(dst, id)
	dst = append(dst, `,"ok":false,"error":{"code":`...)
	dst = appendString(dst, string(e.Code))
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	dst = append(dst, `,"retry_after":`...)
	dst = strconv.AppendInt(dst, e.RetryAfter, 10)
	return append(dst, "}}"...)
}

// ---- per-app caps (App.MaxUsers, App.MaxGroups)

// quotas counts the users and groups of apps that have a cap. Counts
// start from one store scan (Store.CountUsers/CountGroups) the first
// time an app with a cap needs them, and are kept up to date by the
// creations checked here (on a shared store, where other nodes create
// too, every capped creation counts from the store). Creations made while an app has no cap are not
// counted, so setting the caps forgets the counts (SetAppLimits).
type quotas struct {
	// locks[i] (striped by app) serialises the check, write and count of
	// a new user or group of an app with a cap, and guards that app's
	// appQuota. An outer lock like appMu: held across store reads and a
	// journal write, never with another outer lock.
	locks [16]sync.Mutex
	mu    sync.Mutex // a leaf: guards m
	m     map[string]*appQuota
}

type appQuota struct {
	users, groups int // counts, valid when known
	usersKnown    bool
	groupsKnown   bool
}

// entry returns app's counters (created empty) and its stripe lock.
func (q *quotas) entry(app string) (*appQuota, *sync.Mutex) {
	q.mu.Lock()
	if q.m == nil {
		q.m = make(map[string]*appQuota)
	}
	e := q.m[app]
	if e == nil {
		e = &appQuota{}
		q.m[app] = e
	}
	q.mu.Unlock()
	return e, &q.locks[maphash.String(userSeed, app)&uint64(len(q.locks)-1)]
}

// quotaKind is what a cap counts.
type quotaKind uint8

const (
	quotaUsers quotaKind = iota + 1
	quotaGroups
)

// withQuota runs create (which writes a new user or group of a) under a's
// cap: when a has one, it takes the app's lock, re-reads the cap, counts,
// refuses with forbidden at the cap, and counts the creation once create
// succeeds. isNew (nil: always new) says whether create will add one at
// all (a push of an existing user does not). a is the app as the caller
// read it; with no cap there, create runs unchecked.
func (c *Core) withQuota(ctx context.Context, a *App, kind quotaKind, isNew func() (bool, error), create func() error) error {
	if (kind == quotaUsers && a.MaxUsers <= 0) || (kind == quotaGroups && a.MaxGroups <= 0) {
		return create()
	}
	e, mu := c.quotas.entry(a.ID)
	mu.Lock()
	defer mu.Unlock()
	cur, err := c.store.App(ctx, a.ID) // the cap may have changed meanwhile
	if err != nil {
		return err
	}
	max, count, known := cur.MaxUsers, &e.users, &e.usersKnown
	if kind == quotaGroups {
		max, count, known = cur.MaxGroups, &e.groups, &e.groupsKnown
	}
	if max <= 0 {
		return create()
	}
	if isNew != nil {
		if n, err := isNew(); err != nil {
			return err
		} else if !n {
			return create()
		}
	}
	// On a shared store other nodes create too: count from the store each
	// time, under this node's lock (docs/cluster.md: two nodes creating
	// the same instant may each pass the last place).
	if !*known || c.shared != nil {
		n, err := c.countQuota(ctx, a.ID, kind)
		if err != nil {
			return err
		}
		*count, *known = n, true
	}
	if *count >= max {
		if kind == quotaUsers {
			c.limited(LimitAppUsers)
			return Errf(CodeForbidden, "app_users limit: app "+clip(a.ID, 64)+" has "+strconv.Itoa(*count)+
				" users, its max_users is "+strconv.Itoa(max)+"; raise it with POST /api/v1/app/limits")
		}
		c.limited(LimitAppGroups)
		return Errf(CodeForbidden, "app_groups limit: app "+clip(a.ID, 64)+" has "+strconv.Itoa(*count)+
			" groups, its max_groups is "+strconv.Itoa(max)+"; raise it with POST /api/v1/app/limits")
	}
	if err := create(); err != nil {
		return err
	}
	*count++
	return nil
}

func (c *Core) countQuota(ctx context.Context, app string, kind quotaKind) (int, error) {
	if kind == quotaUsers {
		return c.store.CountUsers(ctx, app)
	}
	return c.store.CountGroups(ctx, app)
}

// AppLimitsInput changes an app's caps: a nil field is left as it is, 0
// removes the cap.
type AppLimitsInput struct {
	MaxUsers  *int `json:"max_users,omitempty"`
	MaxGroups *int `json:"max_groups,omitempty"`
}

// AppLimitsView is an app's caps (0: none) and what it has now.
type AppLimitsView struct {
	MaxUsers  int `json:"max_users"`
	MaxGroups int `json:"max_groups"`
	Users     int `json:"users"`
	Groups    int `json:"groups"`
}

// SetAppLimits changes app's caps and returns them with the app's counts.
// Lowering a cap below the count removes nothing; creations are refused
// until the count is under it.
func (c *Core) SetAppLimits(ctx context.Context, app string, in AppLimitsInput) (AppLimitsView, error) {
	if (in.MaxUsers != nil && *in.MaxUsers < 0) || (in.MaxGroups != nil && *in.MaxGroups < 0) {
		return AppLimitsView{}, Errf(CodeBadRequest, "max_users and max_groups must be 0 (no cap) or more")
	}
	e, mu := c.quotas.entry(app)
	mu.Lock()
	c.appMu.Lock() // read-modify-write of the App record, against CreateApp
	a, err := c.App(ctx, app)
	if err == nil {
		if in.MaxUsers != nil {
			a.MaxUsers = *in.MaxUsers
		}
		if in.MaxGroups != nil {
			a.MaxGroups = *in.MaxGroups
		}
		err = c.write(ctx, &Batch{Apps: []App{a}})
	}
	c.appMu.Unlock()
	if err == nil {
		*e = appQuota{} // creations without a cap were not counted
	}
	mu.Unlock()
	if err != nil {
		return AppLimitsView{}, err
	}
	return c.AppLimits(ctx, app)
}

// AppLimits returns app's caps and its counts of users and groups.
func (c *Core) AppLimits(ctx context.Context, app string) (AppLimitsView, error) {
	a, err := c.App(ctx, app)
	if err != nil {
		return AppLimitsView{}, err
	}
	v := AppLimitsView{MaxUsers: a.MaxUsers, MaxGroups: a.MaxGroups}
	if v.Users, err = c.store.CountUsers(ctx, app); err != nil {
		return AppLimitsView{}, err
	}
	if v.Groups, err = c.store.CountGroups(ctx, app); err != nil {
		return AppLimitsView{}, err
	}
	return v, nil
}

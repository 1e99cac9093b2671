package chat

import (
	"math"
	"sync"
	"time"
)

// MaxTokenTTL is the longest lifetime a chat token may be issued with. A
// bound keeps expires_at meaningful: a TTL in seconds multiplied into
// nanoseconds wraps past 2^63, and a wrapped TTL once gave a token for
// "18446744074 s" an expiry 288 ms away.
const MaxTokenTTL = 365 * 24 * time.Hour

// TokenTTLSeconds checks a token lifetime given in seconds (as the HTTP API
// takes it, in the field named field) and converts it. Zero stays zero:
// the configured default.
func TokenTTLSeconds(field string, s int64) (time.Duration, error) {
	if s < 0 {
		return 0, Errf(CodeBadRequest, field+" must not be negative")
	}
	if s > int64(MaxTokenTTL/time.Second) {
		return 0, Errf(CodeBadRequest, field+" of "+itoa(uint64(s))+" s is over the maximum of "+
			itoa(uint64(MaxTokenTTL/time.Second))+" s (365 days)")
	}
	return time.Duration(s) * time.Second, nil
}

// tokenExpiry remembers when the token of each logged-in connection
// expires, so that the sweeper can close the connection then (close code
// 4002): a token is checked at login, and a connection must not outlive
// it. One map entry per logged-in connection and no timer: the sweeper
// looks at the map only when its earliest expiry has come (next), so an
// ordinary tick costs one comparison; a scan that finds something due is
// O(connections), once per distinct expiry time at most per tick.
type tokenExpiry struct {
	mu   sync.Mutex        // guards at and next
	at   map[*Client]int64 // logged-in client → its token's expiry (unix ms)
	next int64             // nothing in at expires before this; may be early after a removal
}

// add records cl's token expiry. Login calls it before cl counts as logged
// in, so that a close racing the login finds the entry to remove.
func (x *tokenExpiry) add(cl *Client, at int64) {
	x.mu.Lock()
	if x.at == nil {
		x.at = make(map[*Client]int64)
		x.next = math.MaxInt64
	}
	x.at[cl] = at
	x.next = min(x.next, at)
	x.mu.Unlock()
}

// remove forgets cl (logged out or closed). Idempotent.
func (x *tokenExpiry) remove(cl *Client) {
	x.mu.Lock()
	delete(x.at, cl)
	x.mu.Unlock()
}

// due removes and returns the clients whose token has expired at now
// (unix ms).
func (x *tokenExpiry) due(now int64) []*Client {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.at) == 0 || now < x.next {
		return nil
	}
	var out []*Client
	next := int64(math.MaxInt64)
	for cl, at := range x.at {
		if at <= now {
			out = append(out, cl)
			delete(x.at, cl)
		} else {
			next = min(next, at)
		}
	}
	x.next = next
	return out
}

// closeExpired closes the connections whose token has expired, with close
// code 4002: the client must get a new token from its host site before it
// reconnects (the old one would be refused). Called by the sweeper.
func (c *Core) closeExpired() {
	for _, cl := range c.expiry.due(c.nowMS()) {
		c.logout(cl, "token expired")
		cl.peer.Close(CloseKicked, "token expired")
	}
}

package chat

import (
	"strconv"
	"sync"
)

// Group budgets. Without them one user could put anyone into thousands of
// groups unasked (about a thousand a second), flooding the victim with
// group events and growing the victim's session list past what one reply
// can carry. Each user has two token buckets, refilled continuously: one
// for groups created (Config.GroupsPerMinute) and one for members added
// (Config.MemberAddsPerMinute; the members named in a group_create count).
// They bind the client API only; the host site's server API is trusted.
//
// A bucket that has refilled completely holds nothing worth keeping, so
// the sweeper drops it (prune): the map holds only users who changed
// groups within about the last minute.

// groupLimits holds the per-user buckets.
type groupLimits struct {
	mu        sync.Mutex              // guards users and lastPrune
	users     map[string]*groupBudget // userKey(app, uid) →
	lastPrune int64                   // unix ms
}

// groupBudget is one user's two buckets at time at (unix ms). Tokens are
// counted in 1/60000ths, so a bucket of limit tokens a minute refills by
// exactly limit units a millisecond: integer arithmetic, no rounding.
type groupBudget struct {
	groups, adds int64 // units left
	at           int64
}

// perMinute is one token in units.
const perMinute = 60000

// refill brings b up to now.
func (b *groupBudget) refill(now int64, groupsPerMin, addsPerMin int) {
	if el := now - b.at; el > 0 {
		b.groups = min(int64(groupsPerMin)*perMinute, b.groups+el*int64(groupsPerMin))
		b.adds = min(int64(addsPerMin)*perMinute, b.adds+el*int64(addsPerMin))
		b.at = now
	}
}

// takeGroupBudget spends groups group creations and adds member additions
// of (app, uid) at once, or nothing and a rate_limited error that says
// which limit and when to retry.
func (c *Core) takeGroupBudget(app, uid string, groups, adds int) *Error {
	gpm, apm := c.cfg.GroupsPerMinute, c.cfg.MemberAddsPerMinute
	if adds > apm {
		return Errf(CodeRateLimited, "at most "+strconv.Itoa(apm)+" members can be added per minute, and this adds "+
			strconv.Itoa(adds)+"; add them in steps, or have the host site use the server API")
	}
	now := c.nowMS()
	l := &c.groupLimits
	l.mu.Lock()
	defer l.mu.Unlock()
	key := userKey(app, uid)
	b := l.users[key]
	if b == nil {
		b = &groupBudget{groups: int64(gpm) * perMinute, adds: int64(apm) * perMinute, at: now}
	}
	b.refill(now, gpm, apm)
	if need := int64(groups)*perMinute - b.groups; need > 0 {
		return Errf(CodeRateLimited, "group creation limit: at most "+strconv.Itoa(gpm)+
			" groups per minute; retry in "+retryIn((need+int64(gpm)-1)/int64(gpm)))
	}
	if need := int64(adds)*perMinute - b.adds; need > 0 {
		return Errf(CodeRateLimited, "member limit: at most "+strconv.Itoa(apm)+
			" members added to groups per minute; retry in "+retryIn((need+int64(apm)-1)/int64(apm)))
	}
	b.groups -= int64(groups) * perMinute
	b.adds -= int64(adds) * perMinute
	if l.users == nil {
		l.users = make(map[string]*groupBudget)
	}
	l.users[key] = b
	return nil
}

// retryIn words a wait of ms milliseconds, rounded up to a second.
func retryIn(ms int64) string {
	return strconv.FormatInt(max((ms+999)/1000, 1), 10) + " s"
}

// prune drops the budgets that have refilled, at most once a minute.
func (l *groupLimits) prune(now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now-l.lastPrune < 60000 {
		return
	}
	l.lastPrune = now
	for k, b := range l.users {
		if now-b.at >= 60000 { // a minute refills both buckets from empty
			delete(l.users, k)
		}
	}
}

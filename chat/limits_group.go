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

// groupBudget is one user's two buckets at time at (unix ms).
type groupBudget struct {
	groups, adds float64 // tokens left
	at           int64
}

// refill brings b up to now.
func (b *groupBudget) refill(now int64, groupsPerMin, addsPerMin int) {
	if el := now - b.at; el > 0 {
		b.groups = min(float64(groupsPerMin), b.groups+float64(el)*float64(groupsPerMin)/60000)
		b.adds = min(float64(addsPerMin), b.adds+float64(el)*float64(addsPerMin)/60000)
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
		b = &groupBudget{groups: float64(gpm), adds: float64(apm), at: now}
	}
	b.refill(now, gpm, apm)
	if need := float64(groups) - b.groups; need > 0 {
		return Errf(CodeRateLimited, "group creation limit: at most "+strconv.Itoa(gpm)+
			" groups per minute; retry in "+retryIn(need*60000/float64(gpm)))
	}
	if need := float64(adds) - b.adds; need > 0 {
		return Errf(CodeRateLimited, "member limit: at most "+strconv.Itoa(apm)+
			" members added to groups per minute; retry in "+retryIn(need*60000/float64(apm)))
	}
	b.groups -= float64(groups)
	b.adds -= float64(adds)
	if l.users == nil {
		l.users = make(map[string]*groupBudget)
	}
	l.users[key] = b
	return nil
}

// retryIn words a wait of ms milliseconds, rounded up to a second.
func retryIn(ms float64) string {
	s := int64(ms+999) / 1000
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10) + " s"
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

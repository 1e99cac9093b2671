package chat

// Routing: which available agent of a shop takes a conversation. Pure
// functions over a snapshot of the shop's agents, so the choice is tested
// without a core. Routing runs when a conversation opens, is reopened or
// changes hands, never per message.

// Routing strategies (ShopSettings.Strategy).
const (
	StrategyBalanced   = "balanced"    // lowest open/capacity ratio; ties to the one idle longest
	StrategyRoundRobin = "round_robin" // the next available agent in turn
	StrategyManual     = "manual"      // nobody is assigned: agents claim from the queue
)

// routeCandidate is one agent of a shop as routing sees it, in the shop's
// agent order (the order they were added).
type routeCandidate struct {
	uid       string
	open      int   // open conversations now
	capacity  int   // open conversations at once
	online    bool  // effectively online (status online, connected or within the grace)
	lastTaken int64 // unix ms of the agent's newest assignment: smaller is idle longer
}

// available reports whether the agent may take one more conversation.
func (a *routeCandidate) available() bool { return a.online && a.open < a.capacity }

// routeChoice picks the agent for one conversation: the index into cands,
// or -1 when nobody may take it (the conversation waits in the queue). rr
// is the shop's round-robin cursor; the returned cursor is the one to keep.
// last is the agent who last served the customer, preferred when
// preferLast is set and that agent is available (on any strategy, manual
// included: a returning customer goes back to the agent they know).
func routeChoice(strategy string, cands []routeCandidate, rr int, last string, preferLast bool) (int, int) {
	if preferLast && last != "" {
		for i := range cands {
			if cands[i].uid == last && cands[i].available() {
				return i, rr
			}
		}
	}
	switch strategy {
	case StrategyManual:
		return -1, rr
	case StrategyRoundRobin:
		n := len(cands)
		if n == 0 {
			return -1, rr
		}
		rr %= n
		for k := 0; k < n; k++ {
			i := (rr + k) % n
			if cands[i].available() {
				return i, (i + 1) % n
			}
		}
		return -1, rr
	}
	best := -1
	for i := range cands {
		a := &cands[i]
		if !a.available() {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := &cands[best]
		// a.open/a.capacity < b.open/b.capacity, without division
		l, r := a.open*b.capacity, b.open*a.capacity
		if l < r || (l == r && a.lastTaken < b.lastTaken) {
			best = i
		}
	}
	return best, rr
}

package chat

import "testing"

func TestRouteChoice(t *testing.T) {
	c := func(uid string, open, capacity int, online bool, last int64) routeCandidate {
		return routeCandidate{uid: uid, open: open, capacity: capacity, online: online, lastTaken: last}
	}
	tests := []struct {
		name       string
		strategy   string
		cands      []routeCandidate
		rr         int
		last       string
		preferLast bool
		want, rrTo int
	}{
		{"balanced: lowest open/capacity ratio", StrategyBalanced,
			[]routeCandidate{c("a", 2, 4, true, 1), c("b", 1, 4, true, 5), c("c", 1, 1, true, 0)}, 0, "", false, 1, 0},
		{"balanced: ratio, not count (3/10 < 1/2)", StrategyBalanced,
			[]routeCandidate{c("a", 1, 2, true, 0), c("b", 3, 10, true, 9)}, 0, "", false, 1, 0},
		{"balanced: tie to the one idle longest", StrategyBalanced,
			[]routeCandidate{c("a", 1, 2, true, 50), c("b", 1, 2, true, 10)}, 0, "", false, 1, 0},
		{"balanced: offline and full agents skipped", StrategyBalanced,
			[]routeCandidate{c("a", 0, 2, false, 0), c("b", 2, 2, true, 0), c("c", 1, 3, true, 0)}, 0, "", false, 2, 0},
		{"balanced: nobody available", StrategyBalanced,
			[]routeCandidate{c("a", 0, 2, false, 0), c("b", 2, 2, true, 0)}, 0, "", false, -1, 0},
		{"round robin: next from the cursor", StrategyRoundRobin,
			[]routeCandidate{c("a", 0, 2, true, 0), c("b", 0, 2, true, 0), c("c", 0, 2, true, 0)}, 1, "", false, 1, 2},
		{"round robin: wraps and skips the unavailable", StrategyRoundRobin,
			[]routeCandidate{c("a", 0, 2, true, 0), c("b", 0, 2, false, 0), c("c", 2, 2, true, 0)}, 1, "", false, 0, 1},
		{"manual: nobody", StrategyManual,
			[]routeCandidate{c("a", 0, 2, true, 0)}, 0, "", false, -1, 0},
		{"prefer last: available last agent wins over balance", StrategyBalanced,
			[]routeCandidate{c("a", 0, 2, true, 0), c("b", 1, 2, true, 0)}, 0, "b", true, 1, 0},
		{"prefer last: full last agent skipped", StrategyBalanced,
			[]routeCandidate{c("a", 0, 2, true, 0), c("b", 2, 2, true, 0)}, 0, "b", true, 0, 0},
		{"prefer last: applies in manual too", StrategyManual,
			[]routeCandidate{c("a", 0, 2, true, 0)}, 0, "a", true, 0, 0},
		{"prefer last off: balance decides", StrategyBalanced,
			[]routeCandidate{c("a", 0, 2, true, 0), c("b", 1, 2, true, 0)}, 0, "b", false, 0, 0},
	}
	for _, tc := range tests {
		got, rr := routeChoice(tc.strategy, tc.cands, tc.rr, tc.last, tc.preferLast)
		if got != tc.want || rr != tc.rrTo {
			t.Errorf("%s: got %d (cursor %d), want %d (cursor %d)", tc.name, got, rr, tc.want, tc.rrTo)
		}
	}
}

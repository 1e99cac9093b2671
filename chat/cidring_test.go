package chat

import "testing"

func TestCIDRingRecordsTheWindow(t *testing.T) {
	var r cidRing
	for seq := uint64(1); seq <= 3*cidWindow; seq++ {
		r.record(seq, seq*10) // hash = seq*10: every message carries a CID
	}
	seen := func(h uint64) (got []uint64) {
		r.candidates(h, func(seq uint64) bool { got = append(got, seq); return false })
		return got
	}
	last := uint64(3 * cidWindow)
	for _, tc := range []struct {
		name string
		seq  uint64
		want bool
	}{
		{name: "newest", seq: last, want: true},
		{name: "oldest in the window", seq: last - cidWindow + 1, want: true},
		{name: "just out of the window", seq: last - cidWindow, want: false},
		{name: "laps ago", seq: 5, want: false},
	} {
		got := seen(tc.seq * 10)
		if tc.want && (len(got) != 1 || got[0] != tc.seq) {
			t.Errorf("%s: candidates for seq %d = %v", tc.name, tc.seq, got)
		}
		if !tc.want && len(got) != 0 {
			t.Errorf("%s: seq %d still a candidate: %v", tc.name, tc.seq, got)
		}
	}
	// A gap in the seqs clears the slots it skips: nothing a lap old
	// survives under a new seq.
	oldest := last - cidWindow + 1 // in the window until the gap
	r.record(last+cidWindow/2, 7)
	if got := seen(oldest * 10); len(got) != 0 {
		t.Errorf("a slot skipped by the gap kept seq %d's hash as %v", oldest, got)
	}
	if got := seen((last - 1) * 10); len(got) != 1 || got[0] != last-1 {
		t.Errorf("seq %d, still in the window, gives %v", last-1, got)
	}
	if got := seen(7); len(got) != 1 || got[0] != last+cidWindow/2 {
		t.Errorf("candidates after the gap = %v", got)
	}
	// candidates stops when fn says so, newest first.
	r2 := cidRing{}
	r2.record(1, 9)
	r2.record(2, 9)
	var order []uint64
	r2.candidates(9, func(seq uint64) bool { order = append(order, seq); return true })
	if len(order) != 1 || order[0] != 2 {
		t.Errorf("candidates order = %v, want [2] (newest first, stopped)", order)
	}
}

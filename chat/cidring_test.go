package chat

import "testing"

func TestCIDListKeepsTheNewest(t *testing.T) {
	seqs := func(l *cidList, h uint64) (got []uint64) {
		l.candidates(h, func(seq uint64) bool { got = append(got, seq); return false })
		return got
	}
	var l cidList
	for seq := uint64(1); seq <= 3*cidPerSender; seq++ {
		l.pushNew(cidEnt{seq: seq, h: seq * 10})
	}
	last := uint64(3 * cidPerSender)
	for _, tc := range []struct {
		name string
		seq  uint64
		want bool
	}{
		{name: "newest", seq: last, want: true},
		{name: "oldest kept", seq: last - cidPerSender + 1, want: true},
		{name: "just dropped", seq: last - cidPerSender, want: false},
		{name: "laps ago", seq: 5, want: false},
	} {
		got := seqs(&l, tc.seq*10)
		if tc.want && (len(got) != 1 || got[0] != tc.seq) {
			t.Errorf("%s: candidates for seq %d = %v", tc.name, tc.seq, got)
		}
		if !tc.want && len(got) != 0 {
			t.Errorf("%s: seq %d still a candidate: %v", tc.name, tc.seq, got)
		}
	}
	if l.n != cidPerSender || len(l.buf) != cidPerSender {
		t.Errorf("full list: n = %d, buffer %d; want both %d", l.n, len(l.buf), cidPerSender)
	}

	// A rebuild adds older entries below the newer ones, until full; the
	// order stays newest first, and collisions are all offered.
	var r cidList
	r.pushNew(cidEnt{seq: 100, h: 7})
	for seq := uint64(99); seq > 0; seq-- {
		if !r.pushOld(cidEnt{seq: seq, h: seq % 3}) {
			t.Fatalf("pushOld(%d) refused with %d of %d", seq, r.n, cidPerSender)
		}
	}
	r.pushNew(cidEnt{seq: 101, h: 7})
	if got := seqs(&r, 7); len(got) != 2 || got[0] != 101 || got[1] != 100 {
		t.Errorf("candidates(7) = %v, want [101 100]", got)
	}
	if got := seqs(&r, 0); len(got) != 33 || got[0] != 99 || got[32] != 3 {
		t.Errorf("candidates(0) = %v, want 99, 96, … 3", got)
	}
	var stopped []uint64
	r.candidates(7, func(seq uint64) bool { stopped = append(stopped, seq); return true })
	if len(stopped) != 1 || stopped[0] != 101 {
		t.Errorf("candidates stopped by fn = %v, want [101]", stopped)
	}
	for r.n < cidPerSender {
		r.pushOld(cidEnt{seq: 0, h: 1})
	}
	if r.pushOld(cidEnt{seq: 0, h: 2}) {
		t.Errorf("pushOld into a full list accepted")
	}
}

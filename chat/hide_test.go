package chat

import (
	"fmt"
	"testing"
)

func TestHiddenSetMerge(t *testing.T) {
	tests := []struct {
		name string
		have hiddenSet
		add  []SeqRange
		want string
	}{
		{name: "empty", add: []SeqRange{{5, 5}}, want: "[{5 5}]"},
		{name: "touching merge", have: hiddenSet{{1, 3}}, add: []SeqRange{{4, 4}}, want: "[{1 4}]"},
		{name: "gap kept", have: hiddenSet{{1, 3}}, add: []SeqRange{{5, 6}}, want: "[{1 3} {5 6}]"},
		{name: "covering", have: hiddenSet{{2, 3}, {5, 6}, {9, 9}}, add: []SeqRange{{1, 7}}, want: "[{1 7} {9 9}]"},
		{name: "up to the top seq", have: hiddenSet{{5, ^uint64(0)}}, add: []SeqRange{{7, 7}, {2, 4}}, want: "[{2 18446744073709551615}]"},
		{name: "unsorted duplicates", add: []SeqRange{{9, 9}, {2, 2}, {9, 9}, {3, 3}}, want: "[{2 3} {9 9}]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.have.merge(tc.add)
			if s := fmt.Sprint([]SeqRange(got)); s != tc.want {
				t.Fatalf("merge = %s, want %s", s, tc.want)
			}
			if back := decodeHidden(encodeHidden(got)); fmt.Sprint([]SeqRange(back)) != tc.want {
				t.Fatalf("codec round trip = %v", back)
			}
		})
	}
	h := hiddenSet{{2, 3}, {7, 9}}
	for seq, want := range map[uint64]bool{1: false, 2: true, 3: true, 4: false, 8: true, 10: false} {
		if _, ok := h.containing(seq); ok != want {
			t.Errorf("containing(%d) = %v", seq, ok)
		}
	}
	if h.below(7) != 3 || h.below(2) != 0 || h.above(4) != 7 || h.above(9) != 0 {
		t.Errorf("below/above: %d %d %d %d", h.below(7), h.below(2), h.above(4), h.above(9))
	}
}

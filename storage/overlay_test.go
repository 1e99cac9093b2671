package storage

import (
	"testing"

	"chatd/chat"
)

// nextMsgs hands out the checkpoint's messages in chunks across session
// runs, in order, none lost or repeated.
func TestNextMsgsChunksRunsInOrder(t *testing.T) {
	run := func(sid chat.SessionID, n int) []chat.Message {
		var ms []chat.Message
		for seq := 1; seq <= n; seq++ {
			ms = append(ms, chat.Message{Session: sid, Seq: uint64(seq)})
		}
		return ms
	}
	for _, tc := range []struct {
		name  string
		sizes []int
		chunk int
	}{
		{name: "one run, exact chunks", sizes: []int{6}, chunk: 3},
		{name: "runs straddle chunks", sizes: []int{5, 1, 7, 2}, chunk: 4},
		{name: "chunk bigger than everything", sizes: []int{3, 4}, chunk: 100},
		{name: "chunk of one", sizes: []int{2, 3}, chunk: 1},
		{name: "no runs", sizes: nil, chunk: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runs [][]chat.Message
			var want []chat.Message
			for i, n := range tc.sizes {
				r := run(chat.SessionID(i+1), n)
				runs = append(runs, r)
				want = append(want, r...)
			}
			var got, chunk []chat.Message
			for len(runs) > 0 {
				chunk, runs = nextMsgs(chunk, runs, tc.chunk)
				if len(chunk) == 0 || len(chunk) > tc.chunk {
					t.Fatalf("chunk of %d messages, want 1..%d", len(chunk), tc.chunk)
				}
				got = append(got, chunk...)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Session != want[i].Session || got[i].Seq != want[i].Seq {
					t.Fatalf("message %d is %d/%d, want %d/%d", i, got[i].Session, got[i].Seq, want[i].Session, want[i].Seq)
				}
			}
		})
	}
}

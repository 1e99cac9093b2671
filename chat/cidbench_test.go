package chat

import (
	"strconv"
	"testing"
)

// BenchmarkCIDCheck is the journal's in-memory CID work per message with a
// fresh CID in a session with a full history: a lookup that finds nothing
// (every entry compared), then recording the committed message.
func BenchmarkCIDCheck(b *testing.B) {
	cids := make([]string, 4096)
	for i := range cids {
		cids[i] = "c-" + strconv.Itoa(i)
	}
	cs := cidState{sessions: map[SessionID]*cidSession{}}
	s := &cidSession{scanHi: 0, done: true, senders: map[string]*cidList{}}
	cs.sessions[1] = s
	m := Message{Session: 1, From: "alice"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.CID = cids[i&4095]
		m.Seq = uint64(i + 1)
		if l := s.senders[m.From]; l != nil {
			l.candidates(cidHash(m.CID), func(uint64) bool { return false })
		}
		cs.record(s, &m)
	}
}

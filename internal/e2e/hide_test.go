package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatd/chat"
)

type hidePage struct {
	Messages []opMsg `json:"messages"`
	HasMore  bool    `json:"has_more"`
}

func seqsOfPage(p hidePage) string {
	out := make([]uint64, len(p.Messages))
	for i, m := range p.Messages {
		out[i] = m.Seq
	}
	return fmt.Sprint(out)
}

// TestDeleteForMeAndClearHistory: a member hides a list and a range of
// messages from their own history and sync (paging steps over the holes),
// their other device is told, the other member still sees everything;
// clearing the history up to a seq hides the rest and marks it read; all
// of it survives a restart.
func TestDeleteForMeAndClearHistory(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	pushUser(t, app, "carol")
	a := login(t, s.WSAddr, "shop", ta)
	b1, b2 := login(t, s.WSAddr, "shop", tb), login(t, s.WSAddr, "shop", tb)
	var sid uint64
	for i := 1; i <= 10; i++ {
		sid = decode[ack](t, a.do(fmt.Sprintf(`"action":"send","to":"bob","type":"text","content":{"text":"m%d"}`, i))).Session
	}

	f := b1.do(fmt.Sprintf(`"action":"delete","session_id":%d,"seqs":[3,2]`, sid))
	if !f.OK || string(decode[json.RawMessage](t, f)) != fmt.Sprintf(`{"session_id":%d,"hidden":[{"lo":2,"hi":3}]}`, sid) {
		t.Fatalf("delete: %s", f.raw)
	}
	if ev := b2.next("hide"); string(ev.Data) != fmt.Sprintf(`{"session_id":%d,"added":[{"lo":3,"hi":3},{"lo":2,"hi":2}],"hidden":[{"lo":2,"hi":3}]}`, sid) {
		t.Fatalf("hide event on the other device: %s", ev.Data)
	}
	raw, err := app.ClientDo(context.Background(), tb, map[string]any{"id": 1, "action": "delete", "session_id": sid, "from_seq": 5, "to_seq": 7})
	if err != nil {
		t.Fatal(err)
	}
	var rep frame
	if json.Unmarshal(raw, &rep) != nil || !rep.OK {
		t.Fatalf("delete range over HTTP: %s", raw)
	}

	// History pages back over the holes; sync pages forward over them.
	for _, step := range []struct {
		req, want string
		more      bool
	}{
		{req: `"action":"history","session_id":%d,"limit":2`, want: "[9 10]", more: true},
		{req: `"action":"history","session_id":%d,"limit":2,"before":9`, want: "[4 8]", more: true},
		{req: `"action":"history","session_id":%d,"limit":2,"before":4`, want: "[1]"},
		{req: `"action":"sync","session_id":%d,"limit":3`, want: "[1 4 8]", more: true},
		{req: `"action":"sync","session_id":%d,"after":8,"limit":3`, want: "[9 10]"},
		{req: `"action":"sync","session_id":%d,"after":1,"limit":50`, want: "[4 8 9 10]"},
	} {
		p := decode[hidePage](t, b2.do(fmt.Sprintf(step.req, sid)))
		if seqsOfPage(p) != step.want || p.HasMore != step.more {
			t.Fatalf("%s: seqs %s has_more %v; want %s %v", step.req, seqsOfPage(p), p.HasMore, step.want, step.more)
		}
	}
	// The other member is unaffected.
	if p := decode[hidePage](t, a.do(fmt.Sprintf(`"action":"history","session_id":%d`, sid))); len(p.Messages) != 10 {
		t.Fatalf("alice's history holds %d messages", len(p.Messages))
	}

	wantReplyError(t, "seqs and a range", b1.do(fmt.Sprintf(`"action":"delete","session_id":%d,"seqs":[1],"from_seq":1,"to_seq":2`, sid)), "bad_request", "not both")
	wantReplyError(t, "seq 0", b1.do(fmt.Sprintf(`"action":"delete","session_id":%d,"seqs":[0]`, sid)), "bad_request", "start at 1")
	wantReplyError(t, "nothing named", b1.do(fmt.Sprintf(`"action":"delete","session_id":%d`, sid)), "bad_request", "missing seqs")
	c := login(t, s.WSAddr, "shop", pushUser(t, app, "dave"))
	wantReplyError(t, "a stranger", c.do(fmt.Sprintf(`"action":"delete","session_id":%d,"seqs":[1]`, sid)), "forbidden", "not a member")

	// Clear up to 9: only 10 is left, and it is the only unread.
	if f := b1.do(fmt.Sprintf(`"action":"clear","session_id":%d,"seq":9`, sid)); !f.OK {
		t.Fatal(f.Error)
	}
	if p := decode[hidePage](t, b1.do(fmt.Sprintf(`"action":"history","session_id":%d`, sid))); seqsOfPage(p) != "[10]" {
		t.Fatalf("history after clear: %s", seqsOfPage(p))
	}
	type view struct {
		Unread  uint64 `json:"unread"`
		ReadSeq uint64 `json:"read_seq"`
	}
	if v := decode[view](t, b1.do(fmt.Sprintf(`"action":"session","session_id":%d`, sid))); v.Unread != 1 || v.ReadSeq != 9 {
		t.Fatalf("session view after clear: %+v", v)
	}
	for _, cl := range []*client{a, b1, b2, c} {
		cl.conn.Close() // by the test, before the server closes them
	}
	s.Stop()

	s2 := start(t, dir, options{})
	b := login(t, s2.WSAddr, "shop", tb)
	h := decode[struct {
		Hidden []chat.SeqRange `json:"hidden"`
	}](t, b.do(fmt.Sprintf(`"action":"hidden","session_id":%d`, sid)))
	if fmt.Sprint(h.Hidden) != "[{1 9}]" {
		t.Fatalf("hidden after restart: %v", h.Hidden)
	}
	if p := decode[hidePage](t, b.do(fmt.Sprintf(`"action":"sync","session_id":%d`, sid))); seqsOfPage(p) != "[10]" {
		t.Fatalf("sync after restart: %s", seqsOfPage(p))
	}
}

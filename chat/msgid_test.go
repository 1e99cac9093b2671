package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"chatd/chat"
)

// A message read back through history, sync or the server API carries the
// msg_id its send reply and its event carried, and is the event's object:
// the same fields with the same values (encoding/json escapes <, > and &
// in the content, so the bytes may differ).
func TestHistoryAndSyncCarryMsgID(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ta, tb := e.user("alice"), e.user("bob")
	a, b := e.login(ta), e.login(tb)
	const n = 3
	var sid uint64
	acks := map[uint64]string{}            // seq → msg_id in the send reply
	events := map[uint64]json.RawMessage{} // seq → the event's data
	for i := 1; i <= n; i++ {
		k := data[ack](t, a.do(fmt.Sprintf(`"action":"send","to":"bob","type":"text","content":{"text":"m%d <a & b>"},"cid":"c%d"`, i, i)))
		sid, acks[k.Seq] = k.Session, k.MsgID
		ev := b.wait(t, event("message"))
		events[data[ack](t, ev).Seq] = ev.Data
	}
	type page struct {
		Messages []json.RawMessage `json:"messages"`
	}
	pages := map[string][]json.RawMessage{
		"history": data[page](t, b.do(fmt.Sprintf(`"action":"history","session_id":%d`, sid))).Messages,
		"sync":    data[page](t, a.do(fmt.Sprintf(`"action":"sync","session_id":%d,"after":0`, sid))).Messages,
	}
	ms, _, err := e.core.History(context.Background(), e.app.ID, chat.SessionID(sid), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var api []json.RawMessage
	for _, m := range ms {
		b, err := json.Marshal(m) // what the HTTP history endpoint encodes
		if err != nil {
			t.Fatal(err)
		}
		api = append(api, b)
	}
	pages["server API history"] = api
	for name, msgs := range pages {
		if len(msgs) != n {
			t.Fatalf("%s: %d messages, want %d", name, len(msgs), n)
		}
		for _, raw := range msgs {
			m := data[ack](t, frame{Data: raw})
			if m.MsgID == "" || m.MsgID != acks[m.Seq] {
				t.Errorf("%s: seq %d has msg_id %q, the send reply had %q", name, m.Seq, m.MsgID, acks[m.Seq])
			}
			var got, want any
			if json.Unmarshal(raw, &got) != nil || json.Unmarshal(events[m.Seq], &want) != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: seq %d is\n%s\nthe event carried\n%s", name, m.Seq, raw, events[m.Seq])
			}
		}
	}
}

package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"chatd/httpapi/apiclient"
)

// The host may give a message its original time (created_at) to import
// history: kept as given, refused in the future or before the session's
// last message (so seqs stay in time order), and never taken from a user.
func TestSendCreatedAt(t *testing.T) {
	h := newHarness(t, nil)
	c := h.app("shop")
	ctx := context.Background()
	ann := h.user(c, "ann")
	h.user(c, "ben")
	send := func(at int64, text string) (apiclient.SendResult, error) {
		return c.Send(ctx, apiclient.SendInput{From: "ann", To: "ben", Type: "text",
			Content: json.RawMessage(`{"text":"` + text + `"}`), CreatedAt: at})
	}
	const t0 = int64(1_600_000_000_000) // 2020
	r1, err := send(t0, "one")
	if err != nil || r1.Seq != 1 || r1.CreatedAt != t0 {
		t.Fatalf("first backdated send: %+v %v", r1, err)
	}
	r2, err := send(t0, "same time") // equal times are in order
	if err != nil || r2.Seq != 2 || r2.CreatedAt != t0 {
		t.Fatalf("send at the same time: %+v %v", r2, err)
	}
	_, err = send(t0-1, "earlier")
	ae := apiErr(t, err, 400, "bad_request")
	if !strings.Contains(ae.Message, "before the last message") {
		t.Fatalf("earlier than the last message: %q", ae.Message)
	}
	_, err = send(time.Now().UnixMilli()+600_000, "future")
	ae = apiErr(t, err, 400, "bad_request")
	if !strings.Contains(ae.Message, "in the future") {
		t.Fatalf("future: %q", ae.Message)
	}
	_, err = send(-5, "negative")
	apiErr(t, err, 400, "bad_request")
	// A send without created_at is now, after the imported ones; after it
	// no backdated message fits any more.
	r3, err := send(0, "live")
	if err != nil || r3.Seq != 3 || r3.CreatedAt <= t0 {
		t.Fatalf("live send: %+v %v", r3, err)
	}
	_, err = send(t0+1, "too late to import")
	apiErr(t, err, 400, "bad_request")

	// A user cannot choose a time: a client send's created_at is not taken.
	raw, err := c.ClientDo(ctx, ann, json.RawMessage(`{"id":1,"action":"send","to":"ben","type":"text","content":{"text":"u"},"created_at":1000}`))
	if err == nil {
		var rep struct {
			OK   bool `json:"ok"`
			Data struct {
				CreatedAt int64 `json:"created_at"`
			} `json:"data"`
		}
		if json.Unmarshal(raw, &rep) != nil || (rep.OK && rep.Data.CreatedAt == 1000) {
			t.Fatalf("a client chose its message's time: %s", raw)
		}
	}
	msgs, err := c.History(ctx, r1.Session, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].CreatedAt < msgs[i-1].CreatedAt {
			t.Fatalf("history out of time order at seq %d: %+v", msgs[i].Seq, msgs)
		}
	}
	if len(msgs) < 3 || msgs[0].CreatedAt != t0 || msgs[1].CreatedAt != t0 {
		t.Fatalf("history: %+v", msgs)
	}
}

package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

// The server API of consultations: create, read, the host's actions, the
// billing record and the record list, the consultant's settings, the
// members' actions over /v1/client, the consult topic on the stream, and
// each kind of bad input with its code.
func TestConsultServerAPI(t *testing.T) {
	h := newHarness(t, nil)
	c := h.app("shop")
	ctx := context.Background()
	lawTok := h.user(c, "lawyer")
	custTok := h.user(c, "cust")
	strangerTok := h.user(c, "stranger")

	ls := openStream(t, streamClient(h.ln, loopbackPeer), false, "consult").start()
	ls.hello("consult")

	if err := c.Do(ctx, "POST", "/api/v1/consultants/lawyer", map[string]any{"free_seconds": 60}, nil); err != nil {
		t.Fatal(err)
	}
	var set chat.ConsultantSettings
	if err := c.Do(ctx, "GET", "/api/v1/consultants/lawyer", nil, &set); err != nil || set.FreeSeconds != 60 {
		t.Fatalf("settings %+v %v", set, err)
	}

	var v chat.ConsultView
	err := c.Do(ctx, "POST", "/api/v1/consultations", map[string]any{"consultant": "lawyer", "customer": "cust",
		"seconds": 900, "price_per_minute": 200, "currency": "CNY", "start": "accept", "ref": "order-1"}, &v)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != chat.ConsultPending || v.FreeSec != 60 || v.RemainingSeconds != 960 || v.Start != chat.StartAccept {
		t.Fatalf("created %+v", v)
	}
	if l := ls.until(func(l streamLine) bool { return l.Topic == "consult" }); l[len(l)-1].Type != "created" ||
		l[len(l)-1].Consult == nil || l[len(l)-1].Consult.State != chat.ConsultPending {
		t.Fatalf("stream: %s", l[len(l)-1].Raw)
	}
	path := fmt.Sprintf("/api/v1/consultations/%d", v.ID)

	// The members act over /v1/client like over WebSocket.
	clientDo := func(tok, action string) map[string]any {
		raw, err := c.ClientDo(ctx, tok, map[string]any{"id": "1", "action": action, "session_id": v.ID})
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	if r := clientDo(strangerTok, "consult_end"); r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), "forbidden") {
		t.Fatalf("stranger: %v", r)
	}
	if r := clientDo(lawTok, "consult_accept"); r["ok"] != true {
		t.Fatalf("accept: %v", r)
	}
	if r := clientDo(custTok, "consult_get"); r["ok"] != true || r["data"].(map[string]any)["state"] != "active" {
		t.Fatalf("get: %v", r)
	}
	if l := ls.until(func(l streamLine) bool { return l.Topic == "consult" }); l[len(l)-1].Type != "accept" || l[len(l)-1].UID != "lawyer" {
		t.Fatalf("stream: %s", l[len(l)-1].Raw)
	}

	// The host's actions.
	if err := c.Do(ctx, "POST", path, map[string]any{"action": "pause"}, &v); err != nil || v.State != chat.ConsultPaused {
		t.Fatalf("pause %+v %v", v, err)
	}
	if err := c.Do(ctx, "POST", path, map[string]any{"action": "extend", "seconds": 300, "ref": "order-2"}, &v); err != nil || v.BoughtSec != 1200 {
		t.Fatalf("extend %+v %v", v, err)
	}
	if err := c.Do(ctx, "POST", path, map[string]any{"action": "resume"}, &v); err != nil || v.State != chat.ConsultActive {
		t.Fatalf("resume %+v %v", v, err)
	}
	if err := c.Do(ctx, "GET", path, nil, &v); err != nil || v.ID == 0 || v.Deadline == 0 {
		t.Fatalf("get %+v %v", v, err)
	}
	apiErr(t, c.Do(ctx, "GET", path+"/record", nil, nil), http.StatusNotFound, "not_found")
	if err := c.Do(ctx, "POST", path, map[string]any{"action": "end"}, &v); err != nil || v.State != chat.ConsultEnded || v.EndReason != chat.EndByHost {
		t.Fatalf("end %+v %v", v, err)
	}
	var rec chat.ConsultRecord
	if err := c.Do(ctx, "GET", path+"/record", nil, &rec); err != nil || rec.EndReason != chat.EndByHost ||
		len(rec.Extensions) != 1 || rec.Extensions[0].Ref != "order-2" || rec.Ref != "order-1" || rec.Currency != "CNY" {
		t.Fatalf("record %+v %v", rec, err)
	}
	var page chat.ConsultRecordsPage
	if err := c.Do(ctx, "GET", "/api/v1/consult-records?customer=cust&limit=10", nil, &page); err != nil ||
		len(page.Records) != 1 || page.Records[0].ID != v.ID {
		t.Fatalf("records %+v %v", page, err)
	}
	if err := c.Do(ctx, "GET", fmt.Sprintf("/api/v1/consult-records?consultant=lawyer&from=%d", rec.EndedAt+1), nil, &page); err != nil || len(page.Records) != 0 {
		t.Fatalf("records after the end %+v %v", page, err)
	}
	// A send after the end is refused over the server API too.
	_, err = c.Send(ctx, apiclient.SendInput{From: "cust", Session: uint64(v.ID), Type: "text", Content: json.RawMessage(`{"text":"more"}`)})
	if e := apiErr(t, err, http.StatusForbidden, "forbidden"); !strings.Contains(e.Message, "has ended") {
		t.Fatalf("send after the end: %v", e)
	}

	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		code, contains     string
	}{
		{name: "unknown consultant", method: "POST", path: "/api/v1/consultations", body: map[string]any{"consultant": "ghost", "customer": "cust", "seconds": 60}, status: 404, code: "not_found", contains: "ghost"},
		{name: "zero seconds", method: "POST", path: "/api/v1/consultations", body: map[string]any{"consultant": "lawyer", "customer": "cust", "seconds": 0}, status: 400, code: "bad_request", contains: "seconds"},
		{name: "negative seconds", method: "POST", path: "/api/v1/consultations", body: map[string]any{"consultant": "lawyer", "customer": "cust", "seconds": -5}, status: 400, code: "bad_request", contains: "seconds"},
		{name: "bad start rule", method: "POST", path: "/api/v1/consultations", body: map[string]any{"consultant": "lawyer", "customer": "cust", "seconds": 60, "start": "later"}, status: 400, code: "bad_request", contains: `start must be "accept"`},
		{name: "unknown field", method: "POST", path: "/api/v1/consultations", body: map[string]any{"consultant": "lawyer", "customer": "cust", "seconds": 60, "minutes": 1}, status: 400, code: "bad_request", contains: "minutes"},
		{name: "bad id", method: "GET", path: "/api/v1/consultations/abc", status: 400, code: "bad_request", contains: "bad consultation id"},
		{name: "unknown id", method: "GET", path: "/api/v1/consultations/987654", status: 404, code: "not_found", contains: "no consultation"},
		{name: "unknown action", method: "POST", path: path, body: map[string]any{"action": "rewind"}, status: 400, code: "bad_request", contains: "unknown action"},
		{name: "host may not accept", method: "POST", path: path, body: map[string]any{"action": "accept"}, status: 403, code: "forbidden", contains: "host may not accept"},
		{name: "wrong state", method: "POST", path: path, body: map[string]any{"action": "pause"}, status: 409, code: "conflict", contains: "ended"},
		{name: "seconds without extend", method: "POST", path: path, body: map[string]any{"action": "end", "seconds": 5}, status: 400, code: "bad_request", contains: "extend only"},
		{name: "records of nobody", method: "GET", path: "/api/v1/consult-records", status: 400, code: "bad_request", contains: "missing consultant or customer"},
		{name: "records bad param", method: "GET", path: "/api/v1/consult-records?customer=cust&page=2", status: 400, code: "bad_request", contains: "unknown query parameter"},
		{name: "records bad from", method: "GET", path: "/api/v1/consult-records?customer=cust&from=-1", status: 400, code: "bad_request", contains: "from"},
		{name: "settings of nobody", method: "GET", path: "/api/v1/consultants/ghost", status: 404, code: "not_found", contains: "ghost"},
		{name: "record path tail", method: "GET", path: path + "/bill", status: 404, code: "not_found", contains: "no such endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := apiErr(t, c.Do(ctx, tc.method, tc.path, tc.body, nil), tc.status, tc.code)
			if !strings.Contains(e.Message, tc.contains) {
				t.Fatalf("message %q, want %q in it", e.Message, tc.contains)
			}
		})
	}
}

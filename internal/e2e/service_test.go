package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"chatd/httpapi/apiclient"
)

type svcConv struct {
	Session   uint64 `json:"session_id"`
	Customer  string `json:"customer"`
	Status    string `json:"status"`
	Agent     string `json:"agent"`
	LastAgent string `json:"last_agent"`
	Position  int    `json:"position"`
}

func svcHost(t *testing.T, app *apiclient.Client, body string, out any) {
	t.Helper()
	if err := app.Do(context.Background(), "POST", "/api/v1/service", json.RawMessage(body), out); err != nil {
		t.Fatalf("POST /api/v1/service %s: %v", body, err)
	}
}

func svcClient(t *testing.T, app *apiclient.Client, token, action string, out any) {
	t.Helper()
	raw, err := app.ClientDo(context.Background(), token, json.RawMessage(action))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		OK    bool            `json:"ok"`
		Data  json.RawMessage `json:"data"`
		Error *struct{ Code, Message string }
	}
	if err := json.Unmarshal(raw, &r); err != nil || !r.OK {
		t.Fatalf("%s: %s", action, raw)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatal(err)
		}
	}
}

// The host API and POST /v1/client drive customer service, and queued,
// open and resolved conversations, the queue's order and the agents survive
// a restart on the real store.
func TestServiceOverHTTPSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, options{})
	app := s.app("mall")
	svcHost(t, app, `{"action":"shop_put","shop":"s1","name":"Shop","settings":{"strategy":"balanced","agent_gone":"keep"}}`, nil)
	pushUser(t, app, "agent1")
	svcHost(t, app, `{"action":"agent_put","shop":"s1","uid":"agent1","capacity":1,"status":"online"}`, nil)
	tok := map[string]string{}
	for _, c := range []string{"c1", "c2", "c3", "c4"} {
		tok[c] = pushUser(t, app, c)
		var v svcConv
		svcClient(t, app, tok[c], `{"action":"service_open","shop":"s1"}`, &v)
	}
	var list []svcConv
	svcHost(t, app, `{"action":"conversations","shop":"s1"}`, &list)
	if len(list) != 4 || list[0].Status != "open" || list[1].Position != 1 || list[3].Position != 3 {
		t.Fatalf("before: %+v", list)
	}
	svcHost(t, app, fmt.Sprintf(`{"action":"resolve","session_id":%d}`, list[0].Session), nil)
	svcHost(t, app, `{"action":"conversations","shop":"s1"}`, &list)
	want := fmt.Sprint(list)
	if list[0].Status != "resolved" || list[1].Status != "open" || list[2].Position != 1 {
		t.Fatalf("after resolve: %+v", list)
	}
	s.Stop()

	s2 := start(t, dir, options{})
	app2 := s2.AppClient(app.App, app.Secret)
	svcHost(t, app2, `{"action":"conversations","shop":"s1"}`, &list)
	if got := fmt.Sprint(list); got != want {
		t.Fatalf("after restart\n%s\nwant\n%s", got, want)
	}
	var agents []struct {
		UID      string `json:"uid"`
		Capacity int    `json:"capacity"`
		Status   string `json:"status"`
		Open     int    `json:"open"`
	}
	svcHost(t, app2, `{"action":"agents","shop":"s1"}`, &agents)
	if len(agents) != 1 || agents[0].Capacity != 1 || agents[0].Status != "online" || agents[0].Open != 1 {
		t.Fatalf("agents after restart: %+v", agents)
	}
	// The queue drains in its old order: c3, then c4.
	svcHost(t, app2, fmt.Sprintf(`{"action":"resolve","session_id":%d}`, list[1].Session), nil)
	svcHost(t, app2, `{"action":"conversations","shop":"s1"}`, &list)
	if list[2].Status != "open" || list[2].Customer != "c3" || list[3].Position != 1 {
		t.Fatalf("after restart and resolve: %+v", list)
	}
	// Errors are specific on the HTTP API too.
	err := app2.Do(context.Background(), "POST", "/api/v1/service", json.RawMessage(`{"action":"agents","shop":"nope"}`), nil)
	if ae, ok := err.(*apiclient.APIError); !ok || ae.Code != "not_found" || ae.Status != 404 {
		t.Fatalf("unknown shop: %v", err)
	}
}

type svcEventWS struct {
	Type     string `json:"type"`
	Shop     string `json:"shop"`
	Session  uint64 `json:"session_id"`
	Agent    string `json:"agent"`
	Position int    `json:"position"`
	Note     string `json:"note"`
}

// nextService waits for the next service event of typ on c.
func nextService(t *testing.T, c *client, typ string) svcEventWS {
	t.Helper()
	for {
		ev := decode[svcEventWS](t, c.next("service"))
		if ev.Type == typ {
			return ev
		}
	}
}

// Over real WebSocket connections: a customer queued behind a busy agent
// is told its position, is assigned when the agent frees up, its messages
// carry the shop and the sender's role, and a transfer's note reaches the
// agents and never the customer's connection.
func TestServiceOverWebSocket(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("mall")
	svcHost(t, app, `{"action":"shop_put","shop":"s1","settings":{"strategy":"balanced"}}`, nil)
	ta, tb := pushUser(t, app, "ann"), pushUser(t, app, "ben")
	ann, ben := login(t, s.WSAddr, "mall", ta), login(t, s.WSAddr, "mall", tb)
	svcHost(t, app, `{"action":"agent_put","shop":"s1","uid":"ann","capacity":1,"status":"online"}`, nil)
	svcHost(t, app, `{"action":"agent_put","shop":"s1","uid":"ben","capacity":1,"status":"away"}`, nil)
	c1 := login(t, s.WSAddr, "mall", pushUser(t, app, "c1"))
	c2 := login(t, s.WSAddr, "mall", pushUser(t, app, "c2"))

	first := decode[svcConv](t, c1.do(`"action":"service_open","shop":"s1"`))
	if first.Status != "open" || first.Agent != "ann" {
		t.Fatalf("c1: %+v", first)
	}
	second := decode[svcConv](t, c2.do(`"action":"service_open","shop":"s1"`))
	if second.Status != "queued" || second.Position != 1 {
		t.Fatalf("c2: %+v", second)
	}
	if ev := nextService(t, c2, "queued"); ev.Position != 1 {
		t.Fatalf("c2 told %+v", ev)
	}
	if r := ann.do(fmt.Sprintf(`"action":"service_resolve","session_id":%d`, first.Session)); !r.OK {
		t.Fatalf("resolve: %s", r.raw)
	}
	if ev := nextService(t, c2, "assigned"); ev.Agent != "ann" || ev.Session != second.Session {
		t.Fatalf("c2 assigned %+v", ev)
	}
	if r := c2.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hello"}`, second.Session)); !r.OK {
		t.Fatalf("send: %s", r.raw)
	}
	var m struct {
		From, Shop, Role string
	}
	m = decode[struct{ From, Shop, Role string }](t, ann.next("message"))
	if m.From != "c2" || m.Shop != "s1" || m.Role != "customer" {
		t.Fatalf("ann got %+v", m)
	}
	if r := ben.do(`"action":"service_status","status":"online"`); !r.OK {
		t.Fatalf("status: %s", r.raw)
	}
	if r := ann.do(fmt.Sprintf(`"action":"service_transfer","session_id":%d,"to":"ben","note":"HIDDEN-NOTE"`, second.Session)); !r.OK {
		t.Fatalf("transfer: %s", r.raw)
	}
	if ev := nextService(t, ben, "transferred"); ev.Note != "HIDDEN-NOTE" || ev.Agent != "ben" {
		t.Fatalf("ben told %+v", ev)
	}
	ev := nextService(t, c2, "transferred")
	if ev.Agent != "ben" || ev.Note != "" {
		t.Fatalf("c2 told %+v", ev)
	}
	// Whatever else reaches the customer's connection, the note does not.
	if r := c2.do(fmt.Sprintf(`"action":"history","session_id":%d`, second.Session)); !r.OK || strings.Contains(string(r.raw), "HIDDEN") {
		t.Fatalf("history: %s", r.raw)
	}
	for len(c2.frames) > 0 {
		if f := <-c2.frames; strings.Contains(string(f.raw), "HIDDEN") {
			t.Fatalf("c2 received %s", f.raw)
		}
	}
}

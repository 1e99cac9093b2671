package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

// Host sends into customer-service and consultation sessions run on the
// domains' owner (docs/cluster.md, "Forwarding host calls"): a send there
// uses the owner's state, so a node that is not the owner forwards it.
// Two nodes, a the owner; every call below goes to b.

// fwdOwnerPair starts the owner a, then b, and returns the app's client
// on b.
func fwdOwnerPair(t *testing.T) (fc *fwdCluster, a, b *fwdNode, onB *apiclient.Client) {
	fc = newFwdCluster(t)
	a = fc.node("a", nil)
	secret := fc.app(a, "shop")
	fc.owns(a, "shop", secret)
	b = fc.node("b", nil)
	return fc, a, b, &apiclient.Client{BaseURL: b.url, App: "shop", Secret: secret}
}

func pushUsers(t *testing.T, c *apiclient.Client, uids ...string) map[string]string {
	t.Helper()
	tokens := map[string]string{}
	for _, uid := range uids {
		r, err := c.PushUser(context.Background(), apiclient.PushUserInput{UID: uid, IssueToken: true})
		if err != nil {
			t.Fatalf("push user %s: %v", uid, err)
		}
		tokens[uid] = r.Token
	}
	return tokens
}

// The consultant's first reply, sent by the host through b, starts the
// clock of a consultation that starts at the first reply: the owner,
// whose clock it is, reads it active afterwards.
func TestForwardSendConsultation(t *testing.T) {
	_, a, _, onB := fwdOwnerPair(t)
	ctx := context.Background()
	pushUsers(t, onB, "lawyer", "cust")
	var v chat.ConsultView
	if err := onB.Do(ctx, "POST", "/api/v1/consultations", map[string]any{"consultant": "lawyer", "customer": "cust",
		"seconds": 900, "start": "first_reply"}, &v); err != nil {
		t.Fatal(err)
	}
	if v.State != chat.ConsultPending {
		t.Fatalf("created through b: %+v, want pending", v)
	}
	// The customer's message does not start it; the consultant's does.
	for _, from := range []string{"cust", "lawyer"} {
		if _, err := onB.Send(ctx, apiclient.SendInput{From: from, Session: uint64(v.ID), Type: "text",
			Content: json.RawMessage(`{"text":"from ` + from + `"}`)}); err != nil {
			t.Fatalf("send from %s through b: %v", from, err)
		}
	}
	path := fmt.Sprintf("/api/v1/consultations/%d", v.ID)
	if err := onB.Do(ctx, "GET", path, nil, &v); err != nil || v.State != chat.ConsultActive || v.Deadline == 0 {
		t.Fatalf("after the consultant's first reply: %+v %v, want active with a deadline", v, err)
	}
	if n := a.srv.fwd.served.Load(); n != 4 {
		t.Errorf("a served %d forwarded calls, want 4 (create, two sends, get)", n)
	}
}

// A customer's message sent by the host through b into a resolved
// service conversation reopens it on the owner.
func TestForwardSendServiceReopen(t *testing.T) {
	_, a, _, onB := fwdOwnerPair(t)
	ctx := context.Background()
	tokens := pushUsers(t, onB, "ann", "cust")
	service := func(req string) chat.ServiceConversation {
		t.Helper()
		var out chat.ServiceConversation
		if err := onB.Do(ctx, "POST", "/api/v1/service", json.RawMessage(req), &out); err != nil {
			t.Fatalf("%s through b: %v", req, err)
		}
		return out
	}
	service(`{"action":"shop_put","shop":"desk","name":"Desk"}`)
	service(`{"action":"agent_put","shop":"desk","uid":"ann","capacity":5}`)
	raw, err := onB.ClientDo(ctx, tokens["cust"], map[string]any{"id": "1", "action": "service_open", "shop": "desk"})
	if err != nil {
		t.Fatal(err)
	}
	var open struct {
		OK   bool                     `json:"ok"`
		Data chat.ServiceConversation `json:"data"`
	}
	if err := json.Unmarshal(raw, &open); err != nil || !open.OK || open.Data.Session == 0 {
		t.Fatalf("service_open through b: %s %v", raw, err)
	}
	sid := open.Data.Session
	if cv := service(fmt.Sprintf(`{"action":"resolve","session_id":%d}`, sid)); cv.Status != chat.ServiceResolved {
		t.Fatalf("resolved: %+v", cv)
	}
	if _, err := onB.Send(ctx, apiclient.SendInput{From: "cust", Session: uint64(sid), Type: "text",
		Content: json.RawMessage(`{"text":"one more thing"}`)}); err != nil {
		t.Fatalf("send through b: %v", err)
	}
	waitFor(t, "the conversation reopens", func() bool {
		return service(fmt.Sprintf(`{"action":"conversation","session_id":%d}`, sid)).Status != chat.ServiceResolved
	})
	if n := a.srv.fwd.served.Load(); n < 5 {
		t.Errorf("a served %d forwarded calls, want the send among them", n)
	}
}

// On one node nothing is forwarded: DomainSession is false for a
// consultation session, and on a cluster node (b) true.
func TestDomainSession(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	c := h.app("shop")
	h.user(c, "lawyer")
	h.user(c, "cust")
	var v chat.ConsultView
	if err := c.Do(ctx, "POST", "/api/v1/consultations", map[string]any{"consultant": "lawyer", "customer": "cust", "seconds": 60}, &v); err != nil {
		t.Fatal(err)
	}
	if h.core.DomainSession(ctx, "shop", v.ID) {
		t.Errorf("one node: a consultation session runs on the domains' owner")
	}

	_, _, b, onB := fwdOwnerPair(t)
	pushUsers(t, onB, "lawyer", "cust")
	if err := onB.Do(ctx, "POST", "/api/v1/consultations", map[string]any{"consultant": "lawyer", "customer": "cust", "seconds": 60}, &v); err != nil {
		t.Fatal(err)
	}
	if !b.core.DomainSession(ctx, "shop", v.ID) {
		t.Errorf("a cluster node: a consultation session does not run on the domains' owner")
	}
	r, err := onB.Send(ctx, apiclient.SendInput{From: "lawyer", To: "cust", Type: "text", Content: json.RawMessage(`{"text":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if b.core.DomainSession(ctx, "shop", chat.SessionID(r.Session)) {
		t.Errorf("a cluster node: a private session runs on the domains' owner")
	}
}

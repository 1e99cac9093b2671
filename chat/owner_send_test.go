package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"chatd/chat"
)

// A send into a consultation session that reaches the core of a cluster
// node that does not serve the domains (the host API forwards it to the
// owner first: httpapi/forward.go) is refused unavailable, not committed
// without the owner's state; on the owner it goes through, and a send
// into any other session runs where it lands.
func TestOwnerHostSend(t *testing.T) {
	ce, _ := ownerCluster(t, time.Hour, "a", "b")
	own := ce.owner("a", "b")
	other := map[string]string{"a": "b", "b": "a"}[own]
	o, n := ce.nodes[own], ce.nodes[other]
	ctx := context.Background()
	for _, uid := range []string{"doc", "pat"} {
		if _, err := o.core.PushUser(ctx, "shop", chat.UserInput{UID: uid}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := o.core.CreateConsultation(ctx, "shop", chat.ConsultInput{Consultant: "doc", Customer: "pat", Seconds: 60,
		Start: chat.StartFirstReply})
	if err != nil {
		t.Fatal(err)
	}
	text := json.RawMessage(`{"text":"hello"}`)
	_, err = n.core.Send(ctx, "shop", chat.SendInput{From: "doc", Session: v.ID, Type: "text", Content: text})
	var e *chat.Error
	if !errors.As(err, &e) || e.Code != chat.CodeUnavailable || !strings.Contains(e.Message, "owner is changing") {
		t.Fatalf("the consultant's reply sent on %s, not the owner: %v", other, err)
	}
	if k, err := o.core.Consultation(ctx, "shop", v.ID); err != nil || k.State != chat.ConsultPending {
		t.Fatalf("after the refused send: %+v %v, want pending", k, err)
	}
	if _, err := o.core.Send(ctx, "shop", chat.SendInput{From: "doc", Session: v.ID, Type: "text", Content: text}); err != nil {
		t.Fatalf("on the owner %s: %v", own, err)
	}
	if k, err := o.core.Consultation(ctx, "shop", v.ID); err != nil || k.State != chat.ConsultActive {
		t.Fatalf("after the first reply on the owner: %+v %v, want active", k, err)
	}
	if _, err := n.core.Send(ctx, "shop", chat.SendInput{From: "doc", To: "pat", Type: "text", Content: text}); err != nil {
		t.Fatalf("a private send on %s: %v", other, err)
	}
}

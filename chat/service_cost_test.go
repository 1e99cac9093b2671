package chat

import (
	"encoding/json"
	"testing"
)

// A message of a service conversation costs what a private one costs:
// its event is encoded once, in one allocation, like the private event,
// and it takes no lock and writes nothing of customer service's.
func TestServiceMessageEventCostsWhatAPrivateOneCosts(t *testing.T) {
	c := &Core{svc: newSvcState()}
	l := &svcLive{app: "app", shop: "s1", customer: "cust"}
	c.svc.live.Store(SessionID(42), l)
	m := Message{Session: 42, Seq: 7, App: "app", From: "agent", Type: "text",
		Content: json.RawMessage(`{"text":"hello there"}`), CreatedAt: 1766000000123}
	private := testing.AllocsPerRun(200, func() {
		_ = appendMessageEvent(make([]byte, 0, 224+len(m.From)+len(m.Type)+len(m.CID)+len(m.Content)), &m)
	})
	service := testing.AllocsPerRun(200, func() { _ = c.svcMessageEvent(&m) })
	if service != private {
		t.Fatalf("service message event: %v allocations, private: %v", service, private)
	}
	var ev struct {
		Event string
		Data  struct {
			Seq  uint64
			From string
			Shop string
			Role string
		}
	}
	if err := json.Unmarshal(c.svcMessageEvent(&m), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event != "message" || ev.Data.Seq != 7 || ev.Data.Shop != "s1" || ev.Data.Role != "agent" {
		t.Fatalf("event %+v", ev)
	}
	m.From = "cust"
	_ = json.Unmarshal(c.svcMessageEvent(&m), &ev)
	if ev.Data.Role != "customer" {
		t.Fatalf("customer's message has role %q", ev.Data.Role)
	}
}

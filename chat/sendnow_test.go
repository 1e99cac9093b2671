package chat_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/chat"
)

// nowPeer is a fakePeer that also takes SendNow, and counts each kind.
type nowPeer struct {
	*fakePeer
	now, queued atomic.Int64
}

func (p *nowPeer) Send(b []byte) bool {
	p.queued.Add(1)
	return p.fakePeer.Send(b)
}

func (p *nowPeer) SendNow(b []byte) bool {
	p.now.Add(1)
	return p.fakePeer.Send(b)
}

var _ chat.NowSender = (*nowPeer)(nil)

func (e *env) loginNow(token string) (*device, *nowPeer) {
	e.t.Helper()
	p := &nowPeer{fakePeer: newPeer()}
	d := &device{fakePeer: p.fakePeer, h: e.core.Accept(p), e: e}
	if f := d.do(`"action":"login","app":"shop","token":"` + token + `"`); !f.OK {
		e.t.Fatalf("login: %+v", f.Error)
	}
	return d, p
}

// A small delivery the journal makes itself goes out with SendNow (the
// ack and the recipient's event); a large fan-out is queued with Send for
// the event loops, and so are replies that do not wait for a commit.
func TestSmallDeliveriesSendNow(t *testing.T) {
	e := newEnv(t, chat.Config{})
	a, pa := e.loginNow(e.user("alice"))
	b, pb := e.loginNow(e.user("bob"))
	if pa.now.Load() != 0 || pb.now.Load() != 0 {
		t.Fatalf("login replies went out with SendNow (%d, %d)", pa.now.Load(), pb.now.Load())
	}

	f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi"}`)
	if !f.OK {
		t.Fatalf("send: %+v", f.Error)
	}
	b.wait(t, event("message"))
	if pa.now.Load() != 1 || pb.now.Load() != 1 {
		t.Fatalf("private message: SendNow used %d times for the ack, %d for the event; want 1 and 1",
			pa.now.Load(), pb.now.Load())
	}

	// A group of 20: its fan-out is past the direct limit.
	uids := make([]string, 0, 19)
	peers := make([]*nowPeer, 0, 19)
	devs := make([]*device, 0, 19)
	for i := range 19 {
		uid := fmt.Sprintf("m%d", i)
		d, p := e.loginNow(e.user(uid))
		uids, peers, devs = append(uids, `"`+uid+`"`), append(peers, p), append(devs, d)
	}
	g := a.do(`"action":"group_create","name":"team","uids":[` + strings.Join(uids, ",") + `]`)
	if !g.OK {
		t.Fatalf("group_create: %+v", g.Error)
	}
	sid := data[struct {
		ID uint64 `json:"session_id"`
	}](t, g).ID
	before := make([]int64, len(peers))
	for i, p := range peers {
		before[i] = p.now.Load()
	}
	if f := a.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"all"}`, sid)); !f.OK {
		t.Fatalf("group send: %+v", f.Error)
	}
	isAll := func(f frame) bool { return f.Event == "message" && strings.Contains(string(f.Data), `"text":"all"`) }
	for i, d := range devs {
		d.wait(t, isAll)
		if n := peers[i].now.Load() - before[i]; n != 0 {
			t.Fatalf("member %d got the group message with SendNow", i)
		}
	}
}

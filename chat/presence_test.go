package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"chatd/chat"
)

// refPeer keeps the slices the core sends, uncopied, to tell whether
// recipients share one encoding.
type refPeer struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (p *refPeer) Send(b []byte) bool {
	p.mu.Lock()
	p.msgs = append(p.msgs, b)
	p.mu.Unlock()
	return true
}
func (p *refPeer) Close(int, string)  {}
func (p *refPeer) RemoteAddr() string { return "127.0.0.1:2" }

func (p *refPeer) events(name string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	for _, m := range p.msgs {
		var f struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(m, &f) == nil && f.Event == name {
			out = append(out, m)
		}
	}
	return out
}

type presClock struct{ ns atomic.Int64 }

func (c *presClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *presClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestPresenceFanOutOneEncode: a user with 5,000 friends, 100 of them
// online on two devices each, comes online. Each online friend device gets
// exactly one presence event, all 200 share one encoding, and nobody else
// gets one.
func TestPresenceFanOutOneEncode(t *testing.T) {
	clk := &presClock{}
	clk.ns.Store(time.Now().UnixNano())
	e := newEnv(t, chat.Config{Now: clk.Now, LoginTimeout: 400 * time.Millisecond})
	ctx := context.Background()
	const friends, online = 5000, 100
	var wg sync.WaitGroup
	errs := make(chan error, friends)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < friends; i += 8 {
				if _, err := e.core.PushUser(ctx, "shop", chat.UserInput{UID: fmt.Sprintf("f%04d", i)}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	tokStar := e.user("star")
	in := chat.ContactImport{}
	for i := 0; i < friends; i++ {
		in.Friends = append(in.Friends, chat.ContactPair{UID: "star", Peer: fmt.Sprintf("f%04d", i)})
	}
	if r, err := e.core.ImportContacts(ctx, "shop", in); err != nil || r.Friended != friends {
		t.Fatalf("import: %+v %v", r, err)
	}
	stranger := e.login(e.user("stranger"))
	login := func(p *refPeer, tok string) {
		h := e.core.Accept(p)
		h.HandleMessage([]byte(`{"id":"1","action":"login","app":"shop","token":"` + tok + `"}`))
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			p.mu.Lock()
			n := len(p.msgs)
			p.mu.Unlock()
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("no login reply")
			}
		}
	}
	var peers []*refPeer
	for i := 0; i < online; i++ {
		g, err := e.core.IssueToken(ctx, "shop", fmt.Sprintf("f%04d", i*(friends/online)), 0)
		if err != nil {
			t.Fatal(err)
		}
		for d := 0; d < 2; d++ {
			p := &refPeer{}
			login(p, g.Token)
			peers = append(peers, p)
		}
	}
	clk.Advance(6 * time.Second) // the friends' own logins settle
	time.Sleep(300 * time.Millisecond)
	base := e.core.Stats().Presence

	login(&refPeer{}, tokStar)
	clk.Advance(6 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for e.core.Stats().Presence-base < 2*online {
		if time.Now().After(deadline) {
			t.Fatalf("%d presence events after 10 s, want %d", e.core.Stats().Presence-base, 2*online)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // more sweeps: nothing else may come
	if n := e.core.Stats().Presence - base; n != 2*online {
		t.Fatalf("%d presence events, want one per online friend device (%d)", n, 2*online)
	}
	var first unsafe.Pointer
	for i, p := range peers {
		evs := p.events("presence")
		if len(evs) != 1 {
			t.Fatalf("device %d got %d presence events", i, len(evs))
		}
		if ptr := unsafe.Pointer(unsafe.SliceData(evs[0])); first == nil {
			first = ptr
		} else if ptr != first {
			t.Fatalf("device %d got its own encoding of the event", i)
		}
	}
	if stranger.count("presence") != 0 {
		t.Fatal("a stranger got a presence event")
	}
}

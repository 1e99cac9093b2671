package chat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
)

// A request forwarded to another node comes back with its handler's
// answer: small, empty, in many pieces both ways; a handler's error, a
// topic nobody serves, this node and an unknown node are told apart.
func TestForwardAnswer(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	b.core.HandleForward("echo", func(_ context.Context, origin string, req []byte) ([]byte, error) {
		if string(req) == "fail" {
			return nil, errors.New("refused by b")
		}
		return append([]byte("b answers "+origin+": "), bytes.ToUpper(req)...), nil
	})
	ctx := context.Background()
	for _, req := range []string{"hello", ""} {
		got, err := a.core.Forward(ctx, "b", "echo", []byte(req))
		if want := "b answers a: " + strings.ToUpper(req); err != nil || string(got) != want {
			t.Fatalf("forward %q: %q, %v; want %q", req, got, err, want)
		}
	}

	// Pieces of 7 bytes: a request of 1000 and a reply of 1013.
	a.core.SetForwardChunkForTest(7)
	b.core.SetForwardChunkForTest(7)
	big := strings.Repeat("abcdefghij", 100)
	got, err := a.core.Forward(ctx, "b", "echo", []byte(big))
	if want := "b answers a: " + strings.ToUpper(big); err != nil || string(got) != want {
		t.Fatalf("forward in pieces: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}

	_, err = a.core.Forward(ctx, "b", "echo", []byte("fail"))
	if !errors.Is(err, chat.ErrForwardFailed) || !strings.Contains(err.Error(), "refused by b") {
		t.Errorf("a failing handler: %v", err)
	}
	if _, err = a.core.Forward(ctx, "b", "nobody", nil); !errors.Is(err, chat.ErrForwardNoHandler) {
		t.Errorf("a topic b does not serve: %v", err)
	}
	if _, err = a.core.Forward(ctx, "a", "echo", nil); !errors.Is(err, chat.ErrNoCluster) {
		t.Errorf("forward to itself: %v", err)
	}
	if _, err = a.core.Forward(ctx, "zz", "echo", nil); !errors.Is(err, chat.ErrForwardUnknown) {
		t.Errorf("forward to a node never heard: %v", err)
	}
	huge := make([]byte, chat.ForwardMaxSize+1)
	if _, err = a.core.Forward(ctx, "b", "echo", huge); !errors.Is(err, chat.ErrForwardTooLarge) {
		t.Errorf("forward over the size limit: %v", err)
	}
}

// A target that is cut off does not answer: the requester gets a timeout
// at its context's end; once the target is presumed dead, a waiting
// request fails at once as gone, and a new one is not sent.
func TestForwardTargetGone(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	b.core.HandleForward("echo", func(_ context.Context, _ string, req []byte) ([]byte, error) { return req, nil })
	ce.hub.cut("b")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.core.Forward(ctx, "b", "echo", []byte("x")); !errors.Is(err, chat.ErrForwardTimeout) {
		t.Fatalf("forward to a cut node: %v, want a timeout", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := a.core.Forward(context.Background(), "b", "echo", []byte("x"))
		done <- err
	}()
	for a.core.ForwardWaitingForTest() == 0 {
		time.Sleep(time.Millisecond) // until the request is sent and waits
	}
	ce.clock.add(4 * time.Second) // b silent for more than 3 heartbeats
	a.core.ClusterTickForTest()
	if err := <-done; !errors.Is(err, chat.ErrForwardGone) {
		t.Fatalf("forward waiting when b is presumed dead: %v", err)
	}
	if _, err := a.core.Forward(context.Background(), "b", "echo", []byte("x")); !errors.Is(err, chat.ErrForwardUnknown) {
		t.Fatalf("forward to a dead node: %v", err)
	}
}

// One origin's requests are served concurrently, up to ForwardInFlight at
// once (the next is answered busy at once, and runs nothing), and
// answered in whatever order they finish.
func TestForwardBoundAndOrder(t *testing.T) {
	ce := newCluster(t)
	a, b := ce.node("a"), ce.node("b")
	release := map[string]chan struct{}{}
	var mu sync.Mutex
	started := make(chan string, chat.ForwardInFlight+1)
	ran := 0
	b.core.HandleForward("wait", func(_ context.Context, _ string, req []byte) ([]byte, error) {
		mu.Lock()
		ran++
		ch := release[string(req)]
		mu.Unlock()
		started <- string(req)
		<-ch
		return append([]byte("done "), req...), nil
	})
	for i := range chat.ForwardInFlight {
		release[fmt.Sprint(i)] = make(chan struct{})
	}
	type result struct {
		req string
		out []byte
		err error
	}
	results := make(chan result, chat.ForwardInFlight)
	for i := range chat.ForwardInFlight {
		go func() {
			req := fmt.Sprint(i)
			out, err := a.core.Forward(context.Background(), "b", "wait", []byte(req))
			results <- result{req, out, err}
		}()
	}
	for range chat.ForwardInFlight {
		<-started // all of them run at once
	}
	if _, err := a.core.Forward(context.Background(), "b", "wait", []byte("one more")); !errors.Is(err, chat.ErrForwardBusy) {
		t.Fatalf("request %d: %v, want busy", chat.ForwardInFlight+1, err)
	}
	if n := b.core.ForwardBusyForTest(); n != 1 {
		t.Errorf("b answered busy %d times, want 1", n)
	}
	// The last one sent finishes first.
	last := fmt.Sprint(chat.ForwardInFlight - 1)
	close(release[last])
	if r := <-results; r.req != last || r.err != nil || string(r.out) != "done "+last {
		t.Fatalf("first answer: %+v, want request %s's", r, last)
	}
	for i := range chat.ForwardInFlight - 1 {
		close(release[fmt.Sprint(i)])
	}
	for range chat.ForwardInFlight - 1 {
		if r := <-results; r.err != nil || string(r.out) != "done "+r.req {
			t.Fatalf("answer %+v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if ran != chat.ForwardInFlight {
		t.Errorf("the handler ran %d times, want %d (the busy one must not run)", ran, chat.ForwardInFlight)
	}
	// Room again once they are done.
	b.core.HandleForward("wait", func(_ context.Context, _ string, req []byte) ([]byte, error) { return req, nil })
	if out, err := a.core.Forward(context.Background(), "b", "wait", []byte("again")); err != nil || string(out) != "again" {
		t.Fatalf("after the burst: %q, %v", out, err)
	}
}

// LeaseNode names the node holding a lease (here "work": the nodes
// themselves take "domains"), from the holder string
// "node/token", cached for a second by the core's clock; a free lease is
// this node's; an expired one is moving (unavailable).
func TestLeaseNode(t *testing.T) {
	ce := newCluster(t)
	a, _ := ce.node("a"), ce.node("b")
	ctx := context.Background()
	if node, self, err := a.core.LeaseNode(ctx, "work"); err != nil || !self || node != "a" {
		t.Fatalf("free lease: %q %v %v, want this node", node, self, err)
	}
	if ok, err := ce.st.TryLease(ctx, "work", "b/tok1", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// Cached: still free for up to a second.
	if _, self, _ := a.core.LeaseNode(ctx, "work"); !self {
		t.Fatalf("read the store again within the second")
	}
	ce.clock.add(time.Second)
	if node, self, err := a.core.LeaseNode(ctx, "work"); err != nil || self || node != "b" {
		t.Fatalf("lease of b: %q %v %v", node, self, err)
	}
	if err := ce.st.ReleaseLease(ctx, "work", "b/tok1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := ce.st.TryLease(ctx, "work", "a/tok2", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	a.core.ForgetLeaseNode("work")
	if node, self, err := a.core.LeaseNode(ctx, "work"); err != nil || !self || node != "a" {
		t.Fatalf("after ForgetLeaseNode: %q %v %v, want a itself", node, self, err)
	}
	if ok, err := ce.st.TryLease(ctx, "gone", "b/tok3", -time.Second); err != nil || !ok { // expired a second ago
		t.Fatal(ok, err)
	}
	_, _, err := a.core.LeaseNode(ctx, "gone")
	var ce2 *chat.Error
	if !errors.As(err, &ce2) || ce2.Code != chat.CodeUnavailable || !strings.Contains(err.Error(), `"gone" is moving`) {
		t.Fatalf("expired lease: %v", err)
	}
}

// Without a broker there is nothing to forward to, and every lease is
// this node's, without a store read.
func TestLeaseNodeSingle(t *testing.T) {
	e := newEnv(t, chat.Config{})
	if node, self, err := e.core.LeaseNode(context.Background(), "domains"); err != nil || !self || node != "" {
		t.Fatalf("single node: %q %v %v", node, self, err)
	}
	if _, err := e.core.Forward(context.Background(), "b", "echo", nil); !errors.Is(err, chat.ErrNoCluster) {
		t.Fatalf("forward on a single node: %v", err)
	}
}

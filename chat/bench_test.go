package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

var sendReq = []byte(`{"id":"123","action":"send","session_id":42,"type":"text","content":{"text":"hello there, how are you today?"},"cid":"c-9f8e7d6c"}`)

func BenchmarkDecodeRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(sendReq)))
	for b.Loop() {
		var r request
		if e := decodeRequest(sendReq, &r); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkValidateContent(b *testing.B) {
	content := json.RawMessage(`{"text":"hello there, how are you today?"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, e := validateContent("text", content, 32<<10); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkAppendMessageEvent(b *testing.B) {
	m := Message{Session: 42, Seq: 118, From: "alice", Type: "text", Content: json.RawMessage(`{"text":"hello there, how are you today?"}`), CID: "c-9f8e7d6c", CreatedAt: 1766000000123}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendMessageEvent(buf[:0], &m)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendSendAck(b *testing.B) {
	r := SendResult{Session: 42, Seq: 118, CreatedAt: 1766000000123}
	id := []byte(`"123"`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendSendAck(buf[:0], id, &r)
	}
}

// countPeer counts what it is sent.
type countPeer struct{ n atomic.Int64 }

func (p *countPeer) Send([]byte) bool   { p.n.Add(1); return true }
func (p *countPeer) Close(int, string)  {}
func (p *countPeer) RemoteAddr() string { return "bench" }

// nullStore is a Store that keeps nothing but what the send path reads, so
// the benchmark measures the core, not a store.
type nullStore struct {
	mu       sync.Mutex
	sessions map[SessionID]Session
	members  map[SessionID][]Member
	users    map[string]User
	tokens   map[[32]byte]Token
}

func newNullStore() *nullStore {
	return &nullStore{sessions: map[SessionID]Session{}, members: map[SessionID][]Member{},
		users: map[string]User{}, tokens: map[[32]byte]Token{}}
}

func (s *nullStore) Apply(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range b.Users {
		s.users[u.App+"/"+u.UID] = u
	}
	for _, t := range b.Tokens {
		s.tokens[t.Hash] = t
	}
	for _, x := range b.Sessions {
		s.sessions[x.ID] = x
	}
	for _, m := range b.Members {
		s.members[m.Session] = append(s.members[m.Session], m)
	}
	return nil
}
func (s *nullStore) App(context.Context, string) (App, error) { return App{ID: "a"}, nil }
func (s *nullStore) Apps(context.Context) ([]App, error)      { return nil, nil }
func (s *nullStore) User(_ context.Context, app, uid string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[app+"/"+uid]; ok {
		return u, nil
	}
	return User{}, ErrNotFound
}
func (s *nullStore) Token(_ context.Context, h [32]byte) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[h]; ok {
		return t, nil
	}
	return Token{}, ErrNotFound
}
func (s *nullStore) Session(_ context.Context, id SessionID) (Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.sessions[id]; ok {
		return x, nil
	}
	return Session{}, ErrNotFound
}
func (s *nullStore) PrivateSession(context.Context, string, string, string) (SessionID, error) {
	return 0, ErrNotFound
}
func (s *nullStore) Members(_ context.Context, id SessionID) ([]Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Member(nil), s.members[id]...), nil
}
func (s *nullStore) Member(context.Context, SessionID, string) (Member, error) {
	return Member{}, ErrNotFound
}
func (s *nullStore) UserSessions(context.Context, string, string) ([]SessionID, error) {
	return nil, nil
}
func (s *nullStore) Messages(context.Context, SessionID, uint64, uint64, int, bool) ([]Message, error) {
	return nil, nil
}
func (s *nullStore) CID(context.Context, string, string, string) (SessionID, uint64, error) {
	return 0, 0, ErrNotFound
}
func (s *nullStore) MaxSessionID(context.Context) (SessionID, error) { return 0, nil }
func (s *nullStore) Record(context.Context, string, []byte) ([]byte, error) {
	return nil, ErrNotFound
}
func (s *nullStore) ScanRecords(context.Context, string, []byte, []byte, int, bool) ([]Record, error) {
	return nil, nil
}
func (s *nullStore) PruneMessages(context.Context, string, int64, SessionID, int) (int, SessionID, error) {
	return 0, 0, nil
}
func (s *nullStore) Restrictions(context.Context) ([]Restriction, error) { return nil, nil }
func (s *nullStore) CountUsers(context.Context, string) (int, error)     { return 0, nil }
func (s *nullStore) CountGroups(context.Context, string) (int, error)    { return 0, nil }
func (s *nullStore) Close() error                                        { return nil }

// BenchmarkGroupSend measures one message through the whole core (decode,
// validate, journal, encode once, fan out to every member's fake peer) for
// groups of different sizes, with a store that costs nothing.
func BenchmarkGroupSend(b *testing.B) {
	for _, size := range []int{2, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := New(Config{}, newNullStore())
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() { c.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			uids := make([]string, size)
			peers := make([]*countPeer, size)
			for i := range uids {
				uids[i] = fmt.Sprintf("u%d", i)
				if _, err := c.PushUser(ctx, "a", UserInput{UID: uids[i]}); err != nil {
					b.Fatal(err)
				}
				g, _ := c.IssueToken(ctx, "a", uids[i], 0)
				peers[i] = &countPeer{}
				h := c.Accept(peers[i])
				h.HandleMessage([]byte(`{"id":"l","action":"login","app":"a","token":"` + g.Token + `"}`))
			}
			for peers[size-1].n.Load() == 0 {
			}
			s, err := c.CreateGroup(ctx, "a", GroupInput{Owner: uids[0], Members: uids[1:]})
			if err != nil {
				b.Fatal(err)
			}
			sender := c.Accept(&countPeer{}).(*Client)
			sender.id, sender.u = Identity{App: "a", UID: uids[0]}, c.userRef("a", uids[0])
			sender.loggedIn.Store(true)
			req := []byte(fmt.Sprintf(`{"id":"1","action":"send","session_id":%d,"type":"text","content":{"text":"hello there, how are you today?"}}`, s.ID))
			want := peers[size-1].n.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.handle(ctx, sender, req)
			}
			want += int64(b.N)
			for peers[size-1].n.Load() < want {
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(size)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkHandleSend drives the transport entry point (HandleMessage, as the
// reactor calls it on an event loop) with 1:1 sends, including the ack back
// to the sender, with a store that costs nothing.
func BenchmarkHandleSend(b *testing.B) { benchHandleSend(b, Config{MaxQueue: 1 << 20}, false) }

// BenchmarkHandleSendCID is BenchmarkHandleSend with a fresh cid on every
// send: the idempotency check (cidring.go) on the hot path.
func BenchmarkHandleSendCID(b *testing.B) { benchHandleSend(b, Config{MaxQueue: 1 << 20}, true) }

// BenchmarkHandleSendWebhook is BenchmarkHandleSend for an app with an
// endpoint that wants message.created: each message also writes its
// outbox record (webhooks.go) in the same commit. The dispatcher does not
// run: this is the cost on the send path alone.
func BenchmarkHandleSendWebhook(b *testing.B) {
	benchHandleSendWith(b, Config{MaxQueue: 1 << 20}, false, true)
}

func benchHandleSend(b *testing.B, cfg Config, cids bool) { benchHandleSendWith(b, cfg, cids, false) }

func benchHandleSendWith(b *testing.B, cfg Config, cids, webhook bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := New(cfg, newNullStore())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var peers [2]*countPeer
	var hs [2]Handler
	for i, uid := range []string{"a", "b"} {
		c.PushUser(ctx, "a", UserInput{UID: uid})
		g, _ := c.IssueToken(ctx, "a", uid, 0)
		peers[i] = &countPeer{}
		hs[i] = c.Accept(peers[i])
		hs[i].HandleMessage([]byte(`{"id":"l","action":"login","app":"a","token":"` + g.Token + `"}`))
		for peers[i].n.Load() == 0 {
		}
	}
	s, err := c.CreateGroup(ctx, "a", GroupInput{Owner: "a", Members: []string{"b"}})
	if err != nil {
		b.Fatal(err)
	}
	if webhook {
		u := "https://hooks.example.com/chat"
		if _, err := c.CreateWebhookEndpoint(ctx, "a", WebhookEndpointInput{URL: &u, Events: []string{WebhookMessageCreated}}); err != nil {
			b.Fatal(err)
		}
	}
	req := []byte(fmt.Sprintf(`{"id":"1","action":"send","session_id":%d,"type":"text","content":{"text":"hello there, how are you today?"}}`, s.ID))
	var creq []byte
	if cids {
		creq = []byte(fmt.Sprintf(`{"id":"1","action":"send","session_id":%d,"type":"text","content":{"text":"hello there, how are you today?"},"cid":"`, s.ID))
	}
	n := len(creq)
	base := peers[0].n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if cids {
			creq = append(strconv.AppendInt(creq[:n], int64(i), 36), '"', '}')
			hs[0].HandleMessage(creq)
		} else {
			hs[0].HandleMessage(req)
		}
		for i%256 == 255 && peers[0].n.Load() < base+int64(i)-1024 {
			// keep at most ~1k in flight, like a client with a window
		}
	}
	for peers[0].n.Load() < base+int64(b.N) {
	}
}

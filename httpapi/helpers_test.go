package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
)

const testAdminKey = "admin-key-for-tests-0123456789"

// loopbackPeer and remotePeer are the client addresses the in-memory
// listener reports to the server.
var (
	loopbackPeer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40001}
	remotePeer   = &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 40002}
)

// harness is one server with a real core on memstore, served on an
// in-memory listener.
type harness struct {
	t      *testing.T
	core   *chat.Core
	srv    *Server
	ln     *fasthttputil.InmemoryListener
	logBuf *syncBuffer
	local  *http.Client // dials from 127.0.0.1
	remote *http.Client // dials from 10.1.2.3
	admin  *apiclient.Client
}

const baseURL = "http://chatd.test"

// newHarness starts a core and a Server; mutate adjusts the Config.
func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	return newHarnessStore(t, memstore.New(), mutate)
}

func newHarnessStore(t *testing.T, st chat.Store, mutate func(*Config)) *harness {
	t.Helper()
	core, err := chat.New(chat.Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()

	cfg := Config{AdminKey: testAdminKey, Version: "v-test"}
	if mutate != nil {
		mutate(&cfg)
	}
	h := &harness{t: t, core: core, logBuf: &syncBuffer{}}
	log := zerolog.New(h.logBuf).Level(zerolog.DebugLevel)
	h.srv, err = New(cfg, core, log)
	if err != nil {
		t.Fatal(err)
	}
	h.ln = fasthttputil.NewInmemoryListener()
	srvDone := make(chan error, 1)
	go func() { srvDone <- h.srv.Serve(ctx, h.ln) }()
	<-h.srv.Ready()
	h.local = h.client(loopbackPeer)
	h.remote = h.client(remotePeer)
	h.admin = &apiclient.Client{BaseURL: baseURL, AdminKey: testAdminKey, HTTP: h.local}
	t.Cleanup(func() {
		cancel()
		for _, c := range []chan error{srvDone, coreDone} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("shutdown timed out")
			}
		}
	})
	return h
}

// client is an http.Client whose connections reach the in-memory listener
// from the address from.
func (h *harness) client(from net.Addr) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(context.Context, string, string) (net.Conn, error) {
				return h.ln.DialWithLocalAddr(from)
			},
		},
		Timeout: 10 * time.Second,
	}
}

// app creates an app and returns a client for it.
func (h *harness) app(id string) *apiclient.Client {
	h.t.Helper()
	a, err := h.admin.CreateApp(context.Background(), id, "App "+id)
	if err != nil {
		h.t.Fatalf("create app: %v", err)
	}
	return &apiclient.Client{BaseURL: baseURL, App: a.ID, Secret: a.Secret, HTTP: h.local}
}

// user pushes a user and returns a token for it.
func (h *harness) user(c *apiclient.Client, uid string) string {
	h.t.Helper()
	r, err := c.PushUser(context.Background(), apiclient.PushUserInput{UID: uid, Nickname: "N " + uid, IssueToken: true})
	if err != nil {
		h.t.Fatalf("push user %s: %v", uid, err)
	}
	return r.Token
}

// answer is a decoded response.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	OK     bool
	Data   json.RawMessage
	Code   string
	Msg    string
}

// do sends req with hc and decodes the envelope.
func do(t *testing.T, hc *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	var env struct {
		OK    bool            `json:"ok"`
		Data  json.RawMessage `json:"data"`
		Error *chat.Error     `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", req.Method, req.URL, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", req.Method, req.URL, ct)
	}
	a.OK, a.Data = env.OK, env.Data
	if env.Error != nil {
		a.Code, a.Msg = string(env.Error.Code), env.Error.Message
	}
	return a
}

// reqOpts builds a raw request for the auth tests.
type reqOpts struct {
	method, path string
	body         []byte
	key          string // signing key; "" leaves the request unsigned
	app          string // X-Chatd-App
	ts           string // "" means now
	nonce        string // "" means a fresh one
	sig          string // "" means the correct signature
}

// rawReq builds a request signed as o says.
func rawReq(t *testing.T, o reqOpts) *http.Request {
	t.Helper()
	var rd io.Reader
	if o.body != nil {
		rd = bytes.NewReader(o.body)
	}
	req, err := http.NewRequest(o.method, baseURL+o.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if o.app != "" {
		req.Header.Set(HeaderApp, o.app)
	}
	if o.key == "" {
		return req
	}
	if o.ts == "" {
		o.ts = strconv.FormatInt(time.Now().Unix(), 10)
	}
	if o.nonce == "" {
		o.nonce = apiclient.NewNonce()
	}
	if o.sig == "" {
		o.sig = apiclient.Sign(o.key, o.method, req.URL.RequestURI(), o.ts, o.nonce, o.body)
	}
	req.Header.Set(HeaderTimestamp, o.ts)
	req.Header.Set(HeaderNonce, o.nonce)
	req.Header.Set(HeaderSignature, o.sig)
	return req
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// apiErr asserts err is an *apiclient.APIError with status and code.
func apiErr(t *testing.T, err error, status int, code string) *apiclient.APIError {
	t.Helper()
	ae, ok := err.(*apiclient.APIError)
	if !ok {
		t.Fatalf("error %v (%T), want *apiclient.APIError", err, err)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("error %d %s %q, want %d %s", ae.Status, ae.Code, ae.Message, status, code)
	}
	return ae
}

// fasthttpCtx is a RequestCtx for calling the handler without a server.
type fasthttpCtx struct{ fasthttp.RequestCtx }

func (c *fasthttpCtx) init(method, uri string, body []byte, remote net.Addr) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.SetBody(body)
	c.Init(&req, remote, nil)
}

package httpapi

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
)

// The worked example of docs/http-api.md, computed independently with
//
//	printf 'POST\n/api/v1/messages\n1766000000\nn0nce-123\n{"from":"u1","to":"u2","type":"text","content":{"text":"hi"}}' |
//	  openssl dgst -sha256 -hmac s3cr3t
const (
	vecKey   = "s3cr3t"
	vecPath  = "/api/v1/messages"
	vecTS    = "1766000000"
	vecNonce = "n0nce-123"
	vecBody  = `{"from":"u1","to":"u2","type":"text","content":{"text":"hi"}}`
	vecSig   = "6469369fe4df9b9409c7a66d39eb2ecb12667da5f039c01cb4f3516f65089375"
)

func TestSignatureVector(t *testing.T) {
	got := signature(nil, []byte(vecKey), []byte("POST"), []byte(vecPath), []byte(vecTS), []byte(vecNonce), []byte(vecBody))
	if hex.EncodeToString(got) != vecSig {
		t.Fatalf("server signature %x, want %s", got, vecSig)
	}
	if s := apiclient.Sign(vecKey, "POST", vecPath, vecTS, vecNonce, []byte(vecBody)); s != vecSig {
		t.Fatalf("apiclient.Sign %s, want %s", s, vecSig)
	}
}

func TestSignedAuthFailures(t *testing.T) {
	h := newHarness(t, nil)
	c := h.app("shop")
	h.app("other")
	now := time.Now().Unix()
	ts := func(d int64) string { return strconv.FormatInt(now+d, 10) }
	body := []byte(`{"uid":"alice"}`)
	del := func(name string) func(*http.Request) { return func(r *http.Request) { r.Header.Del(name) } }
	tests := []struct {
		name   string
		o      reqOpts
		mutate func(*http.Request)
		status int
		code   string
		msg    string // exact, or a prefix when prefix is set
		prefix bool
	}{
		{name: "valid", o: reqOpts{key: c.Secret, app: "shop"}, status: 200},
		{name: "no headers at all", o: reqOpts{app: "shop"}, status: 401, code: "unauthorized", msg: "missing X-Chatd-Signature"},
		{name: "missing signature", o: reqOpts{key: c.Secret, app: "shop"}, mutate: del(HeaderSignature), status: 401, code: "unauthorized", msg: "missing X-Chatd-Signature"},
		{name: "missing timestamp", o: reqOpts{key: c.Secret, app: "shop"}, mutate: del(HeaderTimestamp), status: 401, code: "unauthorized", msg: "missing X-Chatd-Timestamp"},
		{name: "missing nonce", o: reqOpts{key: c.Secret, app: "shop"}, mutate: del(HeaderNonce), status: 401, code: "unauthorized", msg: "missing X-Chatd-Nonce"},
		{name: "missing app", o: reqOpts{key: c.Secret}, status: 401, code: "unauthorized", msg: "missing X-Chatd-App"},
		{name: "unknown app", o: reqOpts{key: c.Secret, app: "ghost"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "another app's secret", o: reqOpts{key: c.Secret, app: "other"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "timestamp not a number", o: reqOpts{key: c.Secret, app: "shop", ts: "12:00"}, status: 401, code: "unauthorized", msg: "bad X-Chatd-Timestamp: want unix seconds"},
		{name: "timestamp in ms", o: reqOpts{key: c.Secret, app: "shop", ts: strconv.FormatInt(now*1000, 10)}, status: 401, code: "unauthorized", msg: "timestamp outside the 5 minute window", prefix: true},
		{name: "stale timestamp", o: reqOpts{key: c.Secret, app: "shop", ts: ts(-301)}, status: 401, code: "unauthorized", msg: "timestamp outside the 5 minute window (server time ", prefix: true},
		{name: "future timestamp", o: reqOpts{key: c.Secret, app: "shop", ts: ts(301)}, status: 401, code: "unauthorized", msg: "timestamp outside the 5 minute window", prefix: true},
		{name: "ahead inside the window but past the 1 minute bound", o: reqOpts{key: c.Secret, app: "shop", ts: ts(120)}, status: 401, code: "unauthorized", msg: "timestamp more than 1 minute ahead of the server clock (server time ", prefix: true},
		{name: "old but inside the window", o: reqOpts{key: c.Secret, app: "shop", ts: ts(-290)}, status: 200},
		{name: "ahead but inside the bound", o: reqOpts{key: c.Secret, app: "shop", ts: ts(50)}, status: 200},
		{name: "nonce too short", o: reqOpts{key: c.Secret, app: "shop", nonce: "abc"}, status: 401, code: "unauthorized", msg: "bad X-Chatd-Nonce: want 8-64 characters from A-Z a-z 0-9 _ -"},
		{name: "nonce too long", o: reqOpts{key: c.Secret, app: "shop", nonce: strings.Repeat("n", 65)}, status: 401, code: "unauthorized", msg: "bad X-Chatd-Nonce: want 8-64 characters from A-Z a-z 0-9 _ -"},
		{name: "nonce bad character", o: reqOpts{key: c.Secret, app: "shop", nonce: "abcdefgh.ij"}, status: 401, code: "unauthorized", msg: "bad X-Chatd-Nonce: want 8-64 characters from A-Z a-z 0-9 _ -"},
		{name: "forged signature", o: reqOpts{key: "guessed-secret", app: "shop"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "signature not hex", o: reqOpts{key: c.Secret, app: "shop", sig: strings.Repeat("zz", 32)}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "signature truncated", o: reqOpts{key: c.Secret, app: "shop", sig: "abcdef"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "body changed after signing", o: reqOpts{key: c.Secret, app: "shop", sig: apiclient.Sign(c.Secret, "POST", "/api/v1/users", ts(0), "nonce-fixed-1", []byte(`{"uid":"mallory"}`)), ts: ts(0), nonce: "nonce-fixed-1"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "path changed after signing", o: reqOpts{key: c.Secret, app: "shop", sig: apiclient.Sign(c.Secret, "POST", "/api/v1/groups", ts(0), "nonce-fixed-2", body), ts: ts(0), nonce: "nonce-fixed-2"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "method changed after signing", o: reqOpts{key: c.Secret, app: "shop", sig: apiclient.Sign(c.Secret, "GET", "/api/v1/users", ts(0), "nonce-fixed-3", body), ts: ts(0), nonce: "nonce-fixed-3"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "timestamp changed after signing", o: reqOpts{key: c.Secret, app: "shop", sig: apiclient.Sign(c.Secret, "POST", "/api/v1/users", ts(-1), "nonce-fixed-4", body), ts: ts(0), nonce: "nonce-fixed-4"}, status: 401, code: "unauthorized", msg: "bad signature"},
		{name: "uppercase hex is accepted", o: reqOpts{key: c.Secret, app: "shop", sig: strings.ToUpper(apiclient.Sign(c.Secret, "POST", "/api/v1/users", ts(0), "nonce-fixed-5", body)), ts: ts(0), nonce: "nonce-fixed-5"}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.method, o.path, o.body = "POST", "/api/v1/users", body
			req := rawReq(t, o)
			if tt.mutate != nil {
				tt.mutate(req)
			}
			a := do(t, h.local, req)
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d (%s)", a.Status, tt.status, a.Body)
			}
			if tt.status == 200 {
				return
			}
			if a.Code != tt.code {
				t.Fatalf("code %q, want %q", a.Code, tt.code)
			}
			if tt.prefix && !strings.HasPrefix(a.Msg, tt.msg) || !tt.prefix && a.Msg != tt.msg {
				t.Fatalf("message %q, want %q", a.Msg, tt.msg)
			}
		})
	}
}

// TestUnknownAppLooksLikeBadSignature probes app ids without a key: a
// request naming an app that does not exist must get the same answer as
// one naming a real app with a wrong key, whatever else is wrong with it,
// so the answers do not reveal which app ids exist.
func TestUnknownAppLooksLikeBadSignature(t *testing.T) {
	h := newHarness(t, nil)
	h.app("shop")
	now := time.Now().Unix()
	body := []byte(`{"uid":"alice"}`)
	probes := []struct {
		name string
		o    reqOpts
	}{
		{name: "guessed key", o: reqOpts{key: "guessed-secret"}},
		{name: "garbage signature", o: reqOpts{key: "guessed-secret", sig: strings.Repeat("ab", 32)}},
		{name: "stale timestamp", o: reqOpts{key: "guessed-secret", ts: strconv.FormatInt(now-3600, 10)}},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			var got [2]answer
			for i, app := range []string{"shop", "no-such-app"} {
				o := p.o
				o.method, o.path, o.body, o.app = "POST", "/api/v1/users", body, app
				got[i] = do(t, h.remote, rawReq(t, o))
			}
			known, unknown := got[0], got[1]
			if known.Status != 401 || known.Code != "unauthorized" {
				t.Fatalf("known app: %d %s %q, want 401 unauthorized", known.Status, known.Code, known.Msg)
			}
			ts := func(m string) string { // the server time in the window message may tick
				if i := strings.Index(m, "(server time "); i >= 0 {
					return m[:i]
				}
				return m
			}
			if unknown.Status != known.Status || unknown.Code != known.Code || ts(unknown.Msg) != ts(known.Msg) {
				t.Fatalf("unknown app answered %d %s %q, known app with a wrong key %d %s %q",
					unknown.Status, unknown.Code, unknown.Msg, known.Status, known.Code, known.Msg)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	h := newHarness(t, nil)
	c := h.app("shop")
	other := h.app("other")
	body := []byte(`{"uid":"alice"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	first := reqOpts{method: "POST", path: "/api/v1/users", body: body, key: c.Secret, app: "shop", ts: ts, nonce: "replay-me-1"}
	if a := do(t, h.local, rawReq(t, first)); a.Status != 200 {
		t.Fatalf("first use: %d %s", a.Status, a.Body)
	}
	a := do(t, h.local, rawReq(t, first))
	if a.Status != 401 || a.Code != "unauthorized" || a.Msg != "nonce already used" {
		t.Fatalf("replay: %d %s %q", a.Status, a.Code, a.Msg)
	}
	// The same nonce with a different body is still a reuse.
	changed := first
	changed.body = []byte(`{"uid":"bob"}`)
	if a := do(t, h.local, rawReq(t, changed)); a.Status != 401 || a.Msg != "nonce already used" {
		t.Fatalf("reuse with a new body: %d %q", a.Status, a.Msg)
	}
	// Nonces are per key: another app (and the admin key) may use it.
	second := first
	second.key, second.app = other.Secret, "other"
	if a := do(t, h.local, rawReq(t, second)); a.Status != 200 {
		t.Fatalf("same nonce, other app: %d %s", a.Status, a.Body)
	}
	adm := reqOpts{method: "GET", path: "/admin/v1/apps", key: testAdminKey, ts: ts, nonce: "replay-me-1"}
	if a := do(t, h.local, rawReq(t, adm)); a.Status != 200 {
		t.Fatalf("same nonce, admin key: %d %s", a.Status, a.Body)
	}
	if a := do(t, h.local, rawReq(t, adm)); a.Status != 401 || a.Msg != "nonce already used" {
		t.Fatalf("admin replay: %d %q", a.Status, a.Msg)
	}
	// A request that failed its signature does not burn the nonce.
	bad := reqOpts{method: "POST", path: "/api/v1/users", body: body, key: "wrong", app: "shop", ts: ts, nonce: "unburnt-1"}
	if a := do(t, h.local, rawReq(t, bad)); a.Msg != "bad signature" {
		t.Fatalf("bad signature: %q", a.Msg)
	}
	good := bad
	good.key = c.Secret
	if a := do(t, h.local, rawReq(t, good)); a.Status != 200 {
		t.Fatalf("nonce after a failed signature: %d %s", a.Status, a.Body)
	}
}

func TestNonceCacheFullIs429(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxNonces, c.MaxNoncesPerKey = 3, 3 })
	c := h.app("shop") // one nonce, in the admin key's own partition
	for i := 0; i < 3; i++ {
		if _, err := c.PushUser(context.Background(), apiclient.PushUserInput{UID: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.PushUser(context.Background(), apiclient.PushUserInput{UID: "alice"})
	ae := apiErr(t, err, 429, "rate_limited")
	if ae.Message != "too many signed requests in the signature window; retry later" {
		t.Fatalf("message %q", ae.Message)
	}
}

// TestOneAppCannotLockOthersOut is the tenant attack on the replay cache:
// one app signing as fast as it can must run into its own limit, while
// other apps and the admin key keep being served.
func TestOneAppCannotLockOthersOut(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxNonces = 8 })
	greedy := h.app("greedy")
	quiet := h.app("quiet")
	bg := context.Background()
	refused := false
	for i := 0; i < 20 && !refused; i++ {
		_, err := greedy.PushUser(bg, apiclient.PushUserInput{UID: "u" + strconv.Itoa(i)})
		if err != nil {
			apiErr(t, err, 429, "rate_limited")
			refused = true
		}
	}
	if !refused {
		t.Fatal("the greedy app was never refused: the cache is unbounded")
	}
	for i := 0; i < 3; i++ {
		if _, err := quiet.PushUser(bg, apiclient.PushUserInput{UID: "q" + strconv.Itoa(i)}); err != nil {
			t.Fatalf("another app after the greedy one filled its share: %v", err)
		}
	}
	// The admin key (two creates so far, a partition of 4) is served too.
	if _, err := h.admin.Status(bg); err != nil {
		t.Fatalf("the admin key after the greedy app filled its share: %v", err)
	}
}

func TestNonceCache(t *testing.T) {
	const window = 300
	t.Run("replay until expiry, then reusable", func(t *testing.T) {
		c := newNonceCache(window, 10, 10)
		n := []byte("nonce-aaaa")
		if r := c.add(kindApp, "shop", n, 1000+window, 1000); r != nonceAdded {
			t.Fatalf("first add %v", r)
		}
		if r := c.add(kindApp, "shop", n, 1000+window, 1000+window); r != nonceReplay {
			t.Fatalf("add at expiry second %v, want replay", r)
		}
		if r := c.add(kindApp, "shop", n, 2000+window, 1000+window+1); r != nonceAdded {
			t.Fatalf("add after expiry %v, want added", r)
		}
		if c.len() != 1 {
			t.Fatalf("len %d, want 1 (slot reused)", c.len())
		}
	})
	t.Run("keys are separate", func(t *testing.T) {
		c := newNonceCache(window, 10, 10)
		n := []byte("nonce-bbbb")
		for _, k := range []struct {
			kind byte
			id   string
		}{{kindApp, "a"}, {kindApp, "b"}, {kindAdmin, ""}, {kindApp, "a\x00"}, {kindApp, ""}} {
			if r := c.add(k.kind, k.id, n, 100, 1); r != nonceAdded {
				t.Fatalf("key %q/%q: %v", k.kind, k.id, r)
			}
		}
		// Length prefixing: id "ab" + nonce "cdefghij" differs from id "abc" + nonce "defghij…".
		if r := c.add(kindApp, "ab", []byte("cdefghij"), 100, 1); r != nonceAdded {
			t.Fatal(r)
		}
		if r := c.add(kindApp, "abc", []byte("defghij"), 100, 1); r != nonceAdded {
			t.Fatal(r)
		}
	})
	t.Run("full until entries expire", func(t *testing.T) {
		c := newNonceCache(window, 3, 3)
		for i := 0; i < 3; i++ {
			if r := c.add(kindApp, "shop", []byte("nonce-"+strconv.Itoa(i)+"xxx"), 10+int64(i), 1); r != nonceAdded {
				t.Fatalf("add %d: %v", i, r)
			}
		}
		if r := c.add(kindApp, "shop", []byte("nonce-new-1"), 100, 1); r != nonceFull {
			t.Fatalf("add over the cap: %v, want full", r)
		}
		if r := c.add(kindApp, "shop", []byte("nonce-0xxx"), 100, 1); r != nonceReplay {
			t.Fatalf("replay while full: %v, want replay", r)
		}
		// At 12 the first two (exp 10, 11) have expired: a full sweep frees them.
		if r := c.add(kindApp, "shop", []byte("nonce-new-1"), 100, 12); r != nonceAdded {
			t.Fatalf("add after expiry: %v, want added", r)
		}
		if c.len() != 2 {
			t.Fatalf("len %d, want 2", c.len())
		}
	})
	t.Run("per-key partitions", func(t *testing.T) {
		c := newNonceCache(window, 6, 4)
		add := func(kind byte, id string, i int) nonceResult {
			return c.add(kind, id, []byte("nonce-"+strconv.Itoa(i)+"xxx"), 100, 1)
		}
		for i := 0; i < 4; i++ {
			if r := add(kindApp, "a", i); r != nonceAdded {
				t.Fatalf("a %d: %v", i, r)
			}
		}
		if r := add(kindApp, "a", 4); r != nonceFull {
			t.Fatalf("a over its partition: %v, want full", r)
		}
		for i := 0; i < 2; i++ {
			if r := add(kindApp, "b", i); r != nonceAdded {
				t.Fatalf("b %d: %v", i, r)
			}
		}
		if r := add(kindApp, "c", 0); r != nonceFull {
			t.Fatalf("c over the apps' total: %v, want full", r)
		}
		// The admin key's partition is outside the apps' total.
		for i := 0; i < 4; i++ {
			if r := add(kindAdmin, "", i); r != nonceAdded {
				t.Fatalf("admin %d with the apps full: %v", i, r)
			}
		}
		if r := add(kindAdmin, "", 4); r != nonceFull {
			t.Fatalf("admin over its partition: %v, want full", r)
		}
		// Expiry frees each partition.
		if r := c.add(kindApp, "c", []byte("nonce-later"), 200, 101); r != nonceAdded {
			t.Fatalf("c after expiry: %v", r)
		}
		// The add swept only as much as it needed (its own shard, or all
		// of them when that was not enough: which depends on where the
		// hash seed put the keys); a full sweep leaves only the live one.
		if !c.sweepAll(102) {
			t.Fatal("no full sweep at a later second")
		}
		if c.len() != 1 {
			t.Fatalf("len %d, want 1 after the sweep", c.len())
		}
	})
	t.Run("periodic sweep bounds memory", func(t *testing.T) {
		c := newNonceCache(8, 1_000_000, 1_000_000) // sweep every second
		for i := 0; i < 1000; i++ {
			c.add(kindApp, "shop", []byte("nonce-"+strconv.Itoa(i)+"-x"), 5, 1)
		}
		// Touch every shard after expiry: each sweeps its dead entries.
		for i := 0; i < 5000; i++ {
			c.add(kindApp, "shop", []byte("later-"+strconv.Itoa(i)+"-x"), 100, 10)
		}
		if c.len() != 5000 {
			t.Fatalf("len %d, want 5000 (the 1000 expired swept)", c.len())
		}
	})
	t.Run("concurrent: one winner per nonce", func(t *testing.T) {
		c := newNonceCache(window, 1_000_000, 1_000_000)
		var wins atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 500; i++ {
					if c.add(kindApp, "shop", []byte("shared-"+strconv.Itoa(i)), 100, 1) == nonceAdded {
						wins.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 500 || c.len() != 500 {
			t.Fatalf("wins %d len %d, want 500 each", wins.Load(), c.len())
		}
	})
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name    string
		peer    net.Addr
		xff     string
		realIP  string
		trusted []netip.Prefix
		want    string
	}{
		{name: "no proxies: peer", peer: &net.TCPAddr{IP: net.ParseIP("203.0.113.5")}, xff: "127.0.0.1", want: "203.0.113.5"},
		{name: "untrusted peer's XFF ignored", peer: &net.TCPAddr{IP: net.ParseIP("203.0.113.5")}, xff: "127.0.0.1", trusted: trusted, want: "203.0.113.5"},
		{name: "trusted proxy: XFF client", peer: &net.TCPAddr{IP: net.ParseIP("10.0.0.2")}, xff: "198.51.100.7", trusted: trusted, want: "198.51.100.7"},
		{name: "rightmost untrusted wins over spoofed left", peer: &net.TCPAddr{IP: net.ParseIP("10.0.0.2")}, xff: "127.0.0.1, 198.51.100.7, 10.0.0.9", trusted: trusted, want: "198.51.100.7"},
		{name: "all trusted: leftmost", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, xff: "10.1.1.1,10.2.2.2", trusted: trusted, want: "10.1.1.1"},
		{name: "malformed XFF: nobody", peer: &net.TCPAddr{IP: net.ParseIP("10.0.0.2")}, xff: "not-an-ip", trusted: trusted, want: "invalid IP"},
		{name: "malformed XFF entry behind a good one: nobody", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, xff: "garbage, 10.0.0.9", trusted: trusted, want: "invalid IP"},
		{name: "malformed XFF with X-Real-IP: nobody", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, xff: "garbage", realIP: "198.51.100.8", trusted: trusted, want: "invalid IP"},
		{name: "malformed X-Real-IP: nobody", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, realIP: "localhost", trusted: trusted, want: "invalid IP"},
		{name: "XFF and X-Real-IP agree", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, xff: "198.51.100.8", realIP: "198.51.100.8", trusted: trusted, want: "198.51.100.8"},
		{name: "X-Real-IP is a trusted proxy in the chain", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, xff: "198.51.100.8, 10.0.0.3", realIP: "10.0.0.3", trusted: trusted, want: "198.51.100.8"},
		{name: "client-written XFF contradicts X-Real-IP: nobody", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, xff: "127.0.0.2", realIP: "198.51.100.8", trusted: trusted, want: "invalid IP"},
		{name: "client-written all-trusted XFF contradicts X-Real-IP: nobody", peer: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, xff: "127.0.0.1", realIP: "198.51.100.8", trusted: trusted, want: "invalid IP"},
		{name: "X-Real-IP from trusted proxy", peer: &net.TCPAddr{IP: net.ParseIP("10.0.0.2")}, realIP: "198.51.100.8", trusted: trusted, want: "198.51.100.8"},
		{name: "mapped IPv4 peer", peer: &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1")}, want: "127.0.0.1"},
		{name: "IPv6 loopback", peer: &net.TCPAddr{IP: net.ParseIP("::1")}, want: "::1"},
		{name: "non-TCP peer", peer: &net.UnixAddr{Name: "x"}, want: "invalid IP"},
	}
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{AdminKey: "k", TrustedProxies: tt.trusted}, core, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			var ctx fasthttpCtx
			ctx.init("GET", "/admin/v1/status", nil, tt.peer)
			if tt.xff != "" {
				ctx.Request.Header.Set("X-Forwarded-For", tt.xff)
			}
			if tt.realIP != "" {
				ctx.Request.Header.Set("X-Real-IP", tt.realIP)
			}
			if got := s.clientIP(&ctx.RequestCtx).String(); got != tt.want {
				t.Fatalf("clientIP %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAdminThroughTrustedProxy(t *testing.T) {
	// A local reverse proxy (trusted, on loopback) forwarding a remote
	// client must not open the admin API to it.
	h := newHarness(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	req := rawReq(t, reqOpts{method: "GET", path: "/admin/v1/status", key: testAdminKey})
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	if a := do(t, h.local, req); a.Status != 403 || a.Msg != "admin API is loopback-only" {
		t.Fatalf("proxied remote admin: %d %q", a.Status, a.Msg)
	}
	req = rawReq(t, reqOpts{method: "GET", path: "/admin/v1/status", key: testAdminKey})
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	if a := do(t, h.local, req); a.Status != 200 {
		t.Fatalf("proxied local admin: %d %s", a.Status, a.Body)
	}
}

// TestForwardedGarbageIsNotLoopback is the attack on a chatd behind a
// proxy on the same host (trusted, on loopback) that sets X-Real-IP and
// passes the client's own X-Forwarded-For through: a remote client must
// not reach the loopback-only endpoints by making chatd fall back to the
// proxy's address.
func TestForwardedGarbageIsNotLoopback(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	headers := []struct{ name, xff, real string }{
		{name: "garbage XFF", xff: "garbage", real: "198.51.100.7"},
		{name: "garbage XFF, no X-Real-IP", xff: "garbage"},
		{name: "empty XFF entry", xff: "198.51.100.7,", real: "198.51.100.7"},
		{name: "garbage X-Real-IP", real: "127.0.0.1:80"},
		{name: "forged loopback XFF", xff: "127.0.0.1", real: "198.51.100.7"},
	}
	paths := []struct {
		path   string
		signed bool
	}{
		{path: "/metrics"},
		{path: "/debug/msgtrace?seconds=1"},
		{path: "/debug/pprof/goroutine"},
		{path: "/admin/v1/status", signed: true},
	}
	for _, hd := range headers {
		for _, p := range paths {
			t.Run(hd.name+" "+p.path, func(t *testing.T) {
				o := reqOpts{method: "GET", path: p.path}
				if p.signed {
					o.key = testAdminKey
				}
				req := rawReq(t, o)
				if hd.xff != "" {
					req.Header.Set("X-Forwarded-For", hd.xff)
				}
				if hd.real != "" {
					req.Header.Set("X-Real-IP", hd.real)
				}
				if a := do(t, h.local, req); a.Status != 403 || a.Code != "forbidden" {
					t.Fatalf("%s through the proxy: %d %s, want 403 forbidden", p.path, a.Status, a.Body)
				}
			})
		}
	}
	// The proxy's own direct calls, without forwarding headers, stay local.
	if a := do(t, h.local, rawReq(t, reqOpts{method: "GET", path: "/admin/v1/status", key: testAdminKey})); a.Status != 200 {
		t.Fatalf("direct loopback admin call: %d %s", a.Status, a.Body)
	}
}

func TestWindowText(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "minutes", d: 5 * time.Minute, want: "5 minute"},
		{name: "seconds", d: 90 * time.Second, want: "90 second"},
		{name: "hours", d: 2 * time.Hour, want: "2 hour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := windowText(tt.d); got != tt.want {
				t.Fatalf("windowText(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestCustomWindow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SignatureWindow = 30 * time.Second })
	old := strconv.FormatInt(time.Now().Unix()-40, 10)
	a := do(t, h.local, rawReq(t, reqOpts{method: "GET", path: "/admin/v1/apps", key: testAdminKey, ts: old}))
	if a.Status != 401 || !strings.HasPrefix(a.Msg, "timestamp outside the 30 second window") {
		t.Fatalf("got %d %q", a.Status, a.Msg)
	}
}

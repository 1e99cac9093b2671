//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/proc"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

// TestPostgresStore runs the chatd binary on a throw-away PostgreSQL (the
// store setting, here from the environment): two users chat over
// WebSocket, chatd restarts, and the history, tokens and seqs are all
// there, in the database and not in the data folder. The bbolt-only
// backup refuses with a pointer to pg_dump, and neither a second chatd
// nor a cluster node starts on the same database.
func TestPostgresStore(t *testing.T) {
	dsn := testpg.Start(t).NewDatabase(t)
	env := []string{"CHATD_STORE=" + dsn}
	dir := newDataDir(t)
	ctx := context.Background()

	f := startForeground(t, env, addrFlags(dir)...)
	ri := waitRunInfo(t, dir, f.cmd.Process.Pid)
	key, err := proc.ReadAdminKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin := &apiclient.Client{BaseURL: ri.HTTPURL(), AdminKey: key}
	a, err := admin.CreateApp(ctx, "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	app := &apiclient.Client{BaseURL: ri.HTTPURL(), App: a.ID, Secret: a.Secret}
	token := map[string]string{}
	for _, uid := range []string{"alice", "bob"} {
		r, err := app.PushUser(ctx, apiclient.PushUserInput{UID: uid, Nickname: uid, IssueToken: true})
		if err != nil {
			t.Fatal(err)
		}
		token[uid] = r.Token
	}
	alice, bob := wsLogin(t, ri.WSAddr, token["alice"]), wsLogin(t, ri.WSAddr, token["bob"])

	const n = 10
	var session uint64
	for i := 1; i <= n; i++ {
		from, to := alice, bob
		target := `"to":"bob"`
		if i%2 == 0 {
			from, to = bob, alice
			target = fmt.Sprintf(`"session_id":%d`, session)
		}
		var ack struct {
			Session uint64 `json:"session_id"`
			Seq     uint64 `json:"seq"`
		}
		from.do(&ack, fmt.Sprintf(`"action":"send",%s,"type":"text","content":{"text":"m%d"}`, target, i))
		session = ack.Session
		var got pgMsg
		to.event("message", &got)
		if ack.Seq != uint64(i) || got.Seq != uint64(i) || got.Content.Text != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d: ack seq %d, the other user got %+v", i, ack.Seq, got)
		}
	}

	// Backups are PostgreSQL's business: the admin API and the command
	// both say so.
	err = admin.Do(ctx, "GET", "/admin/v1/backup", nil, nil)
	var ae *apiclient.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "unavailable" || !strings.Contains(ae.Message, "pg_dump") {
		t.Fatalf("GET /admin/v1/backup: %v, want a refusal naming pg_dump", err)
	}
	r := runBin(t, env, chatdBin, "backup", filepath.Join(t.TempDir(), "b.db"), "--data", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "pg_dump") {
		t.Fatalf("chatd backup on PostgreSQL: exit %d, stderr %q; want a refusal naming pg_dump", r.code, r.stderr)
	}
	r = runBin(t, env, chatdBin, "restore", filepath.Join(t.TempDir(), "b.db"), "--data", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "pg_restore") {
		t.Fatalf("chatd restore on PostgreSQL: exit %d, stderr %q; want a refusal naming pg_restore", r.code, r.stderr)
	}

	// A second chatd (its own data folder) on the same database would
	// hand out the same seqs: it refuses to start.
	r = runBin(t, env, chatdBin, addrFlags(newDataDir(t))...)
	if r.code == 0 || !strings.Contains(r.stderr, "the database is in use by another single chatd node") {
		t.Fatalf("second chatd on the database: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
	// Nor can a cluster node join it: a single node and a cluster never
	// share a database.
	r = runBin(t, env, chatdBin, append(addrFlags(newDataDir(t)), "--cluster-node", "n1", "--nats-listen", "127.0.0.1:0")...)
	if r.code == 0 || !strings.Contains(r.stderr, "the database is in use by a single chatd node") || !strings.Contains(r.stderr, "restart it with cluster_node") {
		t.Fatalf("a cluster node on a single node's database: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}

	f.cmd.Process.Signal(syscall.SIGTERM)
	if code := f.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, f.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, dbFile)); !os.IsNotExist(err) {
		t.Fatalf("%s exists (%v): chat data went to the data folder, not PostgreSQL", dbFile, err)
	}

	f = startForeground(t, env, addrFlags(dir)...)
	ri = waitRunInfo(t, dir, f.cmd.Process.Pid)
	bob = wsLogin(t, ri.WSAddr, token["bob"]) // the token survived
	var h struct {
		Messages []pgMsg `json:"messages"`
	}
	bob.do(&h, fmt.Sprintf(`"action":"history","session_id":%d`, session))
	if len(h.Messages) != n {
		t.Fatalf("history after restart: %d messages, want %d: %+v", len(h.Messages), n, h.Messages)
	}
	for i, m := range h.Messages {
		if m.Seq != uint64(i+1) || m.Content.Text != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("history after restart [%d] = %+v", i, m)
		}
	}
	var ack struct {
		Seq uint64 `json:"seq"`
	}
	bob.do(&ack, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"after"}`, session))
	if ack.Seq != n+1 {
		t.Fatalf("first seq after restart = %d, want %d", ack.Seq, n+1)
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	if code := f.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, f.stderr.String())
	}

	// The database itself holds every message, seqs 1..n+1 without a gap.
	st, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := st.Messages(ctx, chat.SessionID(session), 0, ^uint64(0), 0, false)
	if err != nil || len(ms) != n+1 {
		t.Fatalf("messages in PostgreSQL: %d, %v; want %d", len(ms), err, n+1)
	}
	for i, m := range ms {
		if m.Seq != uint64(i+1) {
			t.Fatalf("stored seqs: #%d is %d", i, m.Seq)
		}
	}
}

type pgMsg struct {
	Seq     uint64 `json:"seq"`
	From    string `json:"from"`
	Content struct {
		Text string `json:"text"`
	} `json:"content"`
}

// wsClient is a minimal protocol client: requests one at a time, events
// kept in order for event().
type wsClient struct {
	t      *testing.T
	frames chan wsFrame
	conn   interface {
		Write([]byte) (int, error)
	}
	n      int
	events []wsFrame
}

type wsFrame struct {
	ReplyTo string          `json:"reply_to"`
	OK      bool            `json:"ok"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	Error   *chat.Error     `json:"error"`
}

func wsLogin(t *testing.T, addr, token string) *wsClient {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{t: t, conn: conn, frames: make(chan wsFrame, 256)}
	go func() {
		defer close(c.frames)
		for {
			b, err := wsutil.ReadServerText(conn)
			if err != nil {
				return
			}
			var f wsFrame
			if json.Unmarshal(b, &f) == nil {
				c.frames <- f
			}
		}
	}()
	c.do(nil, `"action":"login","app":"shop","token":"`+token+`"`)
	return c
}

// do sends a request (fields without braces or id), waits for its reply
// and decodes its data into out (when not nil).
func (c *wsClient) do(out any, fields string) {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("q%d", c.n)
	if err := wsutil.WriteClientText(c.conn, []byte(`{"id":"`+id+`",`+fields+`}`)); err != nil {
		c.t.Fatal(err)
	}
	for {
		f := c.read()
		if f.Event != "" {
			c.events = append(c.events, f)
			continue
		}
		if f.ReplyTo != id {
			continue
		}
		if !f.OK {
			c.t.Fatalf("%s: %+v", fields, f.Error)
		}
		if out != nil {
			if err := json.Unmarshal(f.Data, out); err != nil {
				c.t.Fatal(err)
			}
		}
		return
	}
}

// event waits for the next event called name and decodes its data.
func (c *wsClient) event(name string, out any) {
	c.t.Helper()
	for {
		var f wsFrame
		if len(c.events) > 0 {
			f, c.events = c.events[0], c.events[1:]
		} else {
			f = c.read()
		}
		if f.Event == name {
			if err := json.Unmarshal(f.Data, out); err != nil {
				c.t.Fatal(err)
			}
			return
		}
	}
}

func (c *wsClient) read() wsFrame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatal("connection closed")
		}
		return f
	case <-time.After(10 * time.Second):
		c.t.Fatal("nothing from the server in 10s")
	}
	return wsFrame{}
}

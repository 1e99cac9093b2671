//go:build linux

package e2e_test

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/httpapi/apiclient"
)

// TestKillNineKeepsEveryAck kills chatd with SIGKILL in the middle of a
// stream of pipelined sends, while checkpoints run every 50 ms (so the
// write-ahead log has rotated and its files are being reused), restarts it
// on the same data folder, and checks the promise of an ack: every
// acknowledged message is there with its seq, seqs have no gap, a retry
// of an acknowledged cid is answered as a duplicate with the original
// seq, and the next message gets the next seq.
func TestKillNineKeepsEveryAck(t *testing.T) {
	// One user sends as fast as it can, pipelined: no rate limits, and an
	// outbound limit that a reader slowed by a loaded machine cannot reach
	// (closing it as a slow consumer would end the test before the kill).
	flags := []string{"--checkpoint-interval", "50ms", "--send-rate", "0", "--request-rate", "0", "--max-outbound", "256MiB"}
	p := startBinary(t, 0, flags...)
	app := p.app("shop")
	ta := pushUser(t, app, "alice")
	pushUser(t, app, "bob")

	c := dialRaw(t, p.wsAddr, "", 0)
	c.login(t, "shop", ta)
	type ack struct {
		session, seq uint64
	}
	var (
		mu    sync.Mutex
		acked = map[int]ack{} // message number → its ack
	)
	const total = 400000 // a bound; the kill comes long before
	killAt := 3000       // acks before the kill
	done := make(chan struct{})
	go func() { // reader: acks until the connection dies with the process
		defer close(done)
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			f, err := ws.ReadFrame(c.r)
			if err != nil {
				return
			}
			if f.Header.OpCode != ws.OpText {
				continue
			}
			var r sendReply
			if json.Unmarshal(f.Payload, &r) != nil || !r.OK || r.ReplyTo == "" {
				continue
			}
			n, err := strconv.Atoi(r.ReplyTo)
			if err != nil {
				continue
			}
			mu.Lock()
			acked[n] = ack{r.Data.Session, r.Data.Seq}
			k := len(acked)
			mu.Unlock()
			// Kill once enough is acknowledged and the log has been
			// recycled (see walGeneration), checked every 100 acks.
			if k >= killAt && k%100 == 0 && !p.killed && walGeneration(p.dir) >= 3 {
				p.kill9()
			}
		}
	}()
	// Pipelined sends, without waiting for acks, until the process is
	// gone (writes fail) or total.
	for i := 1; i <= total; i++ {
		msg := `{"id":"` + strconv.Itoa(i) + `","action":"send","to":"bob","type":"text","cid":"c-` + strconv.Itoa(i) +
			`","content":{"text":"m-` + strconv.Itoa(i) + `"}}`
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := wsutil.WriteClientText(c, []byte(msg)); err != nil {
			break
		}
	}
	<-done
	if !p.killed {
		t.Fatalf("only %d of %d sends acknowledged before the connection ended; the kill never happened", len(acked), total)
	}
	if len(acked) < killAt {
		t.Fatalf("%d acks, want at least %d", len(acked), killAt)
	}

	if g := walGeneration(p.dir); g < 3 {
		t.Fatalf("active WAL generation %d at the crash: want 3 or later, or the crash did not hit a recycled log", g)
	}

	// Restart on the same folder: the WAL is replayed.
	q := startBinaryIn(t, p.dir, 0, flags...)
	shop := &apiclient.Client{BaseURL: "http://" + q.httpAddr, App: app.App, Secret: app.Secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
	var session uint64
	for _, a := range acked {
		session = a.session
		break
	}
	stored := history(t, shop, session) // by seq (cluster_test.go)
	for seq := uint64(1); seq <= uint64(len(stored)); seq++ {
		if _, ok := stored[seq]; !ok {
			t.Fatalf("seq %d missing of %d stored: a gap", seq, len(stored))
		}
	}
	for n, a := range acked {
		m, ok := stored[a.seq]
		if !ok || a.session != session {
			t.Fatalf("message %d was acknowledged as %d/%d but is not stored after the crash", n, a.session, a.seq)
		}
		if m.CID != "c-"+strconv.Itoa(n) || string(m.Content) != `{"text":"m-`+strconv.Itoa(n)+`"}` {
			t.Fatalf("seq %d holds cid %q %s, want message %d", a.seq, m.CID, m.Content, n)
		}
	}
	t.Logf("%d sends acknowledged before SIGKILL, %d stored after the restart", len(acked), len(stored))

	// A retry from a new connection of the newest stored send (stored,
	// its ack lost with the crash: what a client retries) is a duplicate
	// with the original seq; a new message continues the seqs.
	d := dialRaw(t, q.wsAddr, "", 0)
	d.login(t, "shop", ta)
	newest := stored[uint64(len(stored))]
	r := d.call(t, `{"id":"r","action":"send","to":"bob","type":"text","cid":"`+newest.CID+`","content":`+string(newest.Content)+`}`, "r")
	if !r.OK || !r.Data.Duplicate || r.Data.Seq != newest.Seq {
		t.Fatalf("retry of %s: %+v, want a duplicate of seq %d", newest.CID, r, newest.Seq)
	}
	r = d.call(t, `{"id":"n","action":"send","to":"bob","type":"text","cid":"after","content":{"text":"after"}}`, "n")
	if !r.OK || r.Data.Duplicate || r.Data.Seq != uint64(len(stored))+1 {
		t.Fatalf("first send after the restart: %+v, want seq %d", r, len(stored)+1)
	}
}

// sendReply is a reply; Data is filled for a send's.
type sendReply struct {
	ReplyTo string `json:"reply_to"`
	OK      bool   `json:"ok"`
	Data    struct {
		Session   uint64 `json:"session_id"`
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	} `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call sends msg and returns the reply to id (events are skipped).
func (c *rawClient) call(t *testing.T, msg, id string) sendReply {
	t.Helper()
	c.send(t, msg)
	return c.replyTo(t, id)
}

// walGeneration reads the active WAL file's header ("chatdWAL", then the
// generation): 1 at start, 2 for the first new file after a checkpoint,
// 3 or later once a checkpointed file has been reused. 0 when unreadable.
func walGeneration(dir string) uint64 {
	f, err := os.Open(filepath.Join(dir, "chat.db-wal"))
	if err != nil {
		return 0
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := io.ReadFull(f, head); err != nil || string(head[:8]) != "chatdWAL" {
		return 0
	}
	return binary.BigEndian.Uint64(head[8:])
}

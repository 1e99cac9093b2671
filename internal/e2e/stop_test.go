//go:build linux

package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/httpapi/apiclient"
)

// TestGracefulStopAnswersEveryStoredSend stops chatd (SIGTERM) while four
// senders pipeline sends, restarts it and checks the promise of a graceful
// stop: every send that is stored got its ok reply, with its seq, before
// the connection closed with 1001, and every ok reply is stored. Sends the
// server took after it began stopping are refused "server is stopping".
// (chatd stop takes the same path: it cancels the same stack.)
func TestGracefulStopAnswersEveryStoredSend(t *testing.T) {
	p := startBinary(t, 0, "--send-rate", "0", "--request-rate", "0") // each sender floods as fast as it can
	app := p.app("shop")
	pushUser(t, app, "bob")

	const senders = 4
	const window = 200     // sends a sender has unanswered at most (under the 256 a connection may queue)
	const stopAfter = 4000 // ok replies over all senders before the stop
	type sender struct {
		uid     string
		c       *rawClient
		mu      sync.Mutex
		ok      map[int]uint64 // message number → seq
		session uint64
		refused map[string]int // error replies by code and message
		answers atomic.Int64
		code    ws.StatusCode // the close frame's
		readErr error
	}
	var totalOK atomic.Int64
	stopping := make(chan struct{})
	var stopOnce sync.Once
	ss := make([]*sender, senders)
	var readers, writers sync.WaitGroup
	for i := range ss {
		s := &sender{uid: "s" + strconv.Itoa(i), ok: map[int]uint64{}, refused: map[string]int{}}
		ss[i] = s
		tok := pushUser(t, app, s.uid)
		s.c = dialRaw(t, p.wsAddr, "", 0)
		s.c.login(t, "shop", tok)
		readers.Add(1)
		go func() { // replies until the server closes
			defer readers.Done()
			s.c.SetReadDeadline(time.Now().Add(60 * time.Second))
			for {
				f, err := ws.ReadFrame(s.c.r)
				if err != nil {
					s.readErr = err
					return
				}
				if f.Header.OpCode == ws.OpClose {
					s.code, _ = ws.ParseCloseFrameData(f.Payload)
					return
				}
				if f.Header.OpCode != ws.OpText {
					continue
				}
				var r sendReply
				if json.Unmarshal(f.Payload, &r) != nil || r.ReplyTo == "" {
					continue
				}
				n, err := strconv.Atoi(r.ReplyTo)
				if err != nil {
					continue
				}
				s.mu.Lock()
				if r.OK {
					s.ok[n] = r.Data.Seq
					s.session = r.Data.Session
				} else if r.Error != nil {
					s.refused[r.Error.Code+": "+r.Error.Message]++
				}
				s.mu.Unlock()
				s.answers.Add(1)
				if r.OK && totalOK.Add(1) == stopAfter {
					stopOnce.Do(func() { close(stopping) })
				}
			}
		}()
		writers.Add(1)
		go func() { // pipelined sends, at most window unanswered, until the connection ends
			defer writers.Done()
			for n := 1; n <= 1_000_000; n++ {
				for int64(n)-s.answers.Load() > window {
					select {
					case <-p.exited:
						return
					case <-time.After(100 * time.Microsecond):
					}
				}
				msg := `{"id":"` + strconv.Itoa(n) + `","action":"send","to":"bob","type":"text","cid":"` + s.uid + `-` +
					strconv.Itoa(n) + `","content":{"text":"` + s.uid + `-` + strconv.Itoa(n) + `"}}`
				s.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if wsutil.WriteClientText(s.c, []byte(msg)) != nil {
					return
				}
				select {
				case <-p.exited:
					return
				default:
				}
			}
		}()
	}

	select {
	case <-stopping:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d ok replies in 60 s", totalOK.Load())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("chatd did not stop within 30 s of SIGTERM")
	}
	p.killed = true // stopped here; the cleanup has nothing to do
	if p.exitErr != nil {
		t.Fatalf("chatd exit: %v\n%s", p.exitErr, tail(p.output.String(), 4000))
	}
	readers.Wait()
	for _, s := range ss {
		s.c.Close() // ends a writer blocked in a write
	}
	writers.Wait()

	q := startBinaryIn(t, p.dir, 0)
	shop := &apiclient.Client{BaseURL: "http://" + q.httpAddr, App: app.App, Secret: app.Secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
	var oks, refused int
	for _, s := range ss {
		if s.code != ws.StatusGoingAway {
			t.Errorf("%s: connection ended with close code %d (read error %v), want 1001 after its replies", s.uid, s.code, s.readErr)
		}
		stored := map[int]uint64{} // message number → seq
		var before uint64
		for {
			page, err := shop.History(context.Background(), s.session, before, 500)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				n, err := strconv.Atoi(m.CID[len(s.uid)+1:])
				if err != nil || m.From != s.uid {
					t.Fatalf("%s: stored message seq %d from %s with cid %q", s.uid, m.Seq, m.From, m.CID)
				}
				if _, dup := stored[n]; dup {
					t.Fatalf("%s: message %d stored twice", s.uid, n)
				}
				stored[n] = m.Seq
				if before == 0 || m.Seq < before {
					before = m.Seq
				}
			}
			if len(page) == 0 || before <= 1 {
				break
			}
		}
		for n, seq := range stored {
			if got, ok := s.ok[n]; !ok || got != seq {
				t.Errorf("%s: message %d is stored as seq %d but its reply was %v (ok reply seq %d)", s.uid, n, seq, ok, got)
			}
		}
		for n, seq := range s.ok {
			if stored[n] != seq {
				t.Errorf("%s: message %d was acknowledged as seq %d but is not stored", s.uid, n, seq)
			}
		}
		for msg, k := range s.refused {
			if msg != "unavailable: server is stopping" {
				t.Errorf("%s: %d sends refused with %q", s.uid, k, msg)
			}
			refused += k
		}
		oks += len(s.ok)
	}
	t.Logf("%d sends acknowledged and stored, %d refused while stopping", oks, refused)
}

//go:build linux

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/httpapi/apiclient"
	"chatd/internal/testpg"
)

// A real cluster (docs/cluster.md): three chatd processes on one
// throw-away PostgreSQL, each embedding a NATS server routed to the
// others, clients on all three. Skipped without PostgreSQL, except with
// CHATD_REQUIRE_INTEROP=1 (CI), like every testpg test.

// freeAddrs returns n loopback addresses whose ports were free a moment
// ago (the NATS route ports, which every node must know before any
// starts).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

// startCluster starts one chatd per id on the database dsn, routed to
// each other, with the extra flags, and waits until every node delivers
// to every other (clusterReady).
func startCluster(t *testing.T, dsn string, ids []string, flags ...string) []*chatdProc {
	t.Helper()
	routes := freeAddrs(t, len(ids))
	urls := make([]string, len(routes))
	for i, r := range routes {
		urls[i] = "nats://" + r
	}
	var nodes []*chatdProc
	for i, id := range ids {
		f := append([]string{"--store", dsn, "--cluster-node", id, "--nats-listen", routes[i],
			"--nats-routes", strings.Join(urls, ",")}, flags...)
		nodes = append(nodes, startBinary(t, 0, f...))
	}
	return nodes
}

// appOn is app's client on node p's HTTP API.
func appOn(p *chatdProc, app *apiclient.Client) *apiclient.Client {
	return &apiclient.Client{BaseURL: "http://" + p.httpAddr, App: app.App, Secret: app.Secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// clusterReady waits until a user on each node reaches a user on every
// other node live: the routes are up and the nodes have exchanged their
// connections (hello, or the heartbeat of a node not known yet).
func clusterReady(t *testing.T, nodes []*chatdProc, app *apiclient.Client, appID string) {
	t.Helper()
	probes := make([]*client, len(nodes))
	for i, p := range nodes {
		probes[i] = login(t, p.wsAddr, appID, pushUser(t, app, "probe"+strconv.Itoa(i)))
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range nodes {
		for j := range nodes {
			if i == j {
				continue
			}
			for n := 0; ; n++ {
				text := fmt.Sprintf("probe %d→%d #%d", i, j, n)
				if r := probes[i].do(`"action":"send","to":"probe` + strconv.Itoa(j) + `","type":"text","content":{"text":"` + text + `"}`); !r.OK {
					t.Fatalf("probe send: %+v", r.Error)
				}
				if waitMessage(probes[j], text, 300*time.Millisecond) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d does not reach node %d after 30s:\n%s", i, j, tail(nodes[i].output.String(), 3000))
				}
			}
		}
	}
	for _, c := range probes {
		c.conn.Close()
	}
}

// waitMessage waits up to d for a message event with this text,
// skipping everything else.
func waitMessage(c *client, text string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return false
			}
			if f.Event == "message" {
				var m message
				if json.Unmarshal(f.Data, &m) == nil && m.Content.Text == text {
					return true
				}
			}
		case <-timeout:
			return false
		}
	}
}

// TestClusterThreeNodes: users on different nodes chat 1:1 and in a
// group, see each other type and come and go, and a `single` device
// policy closes a device on another node.
func TestClusterThreeNodes(t *testing.T) {
	dsn := testpg.Start(t).NewDatabase(t)
	nodes := startCluster(t, dsn, []string{"n1", "n2", "n3"}, "--presence-debounce", "200ms")
	app := nodes[0].app("shop")
	clusterReady(t, nodes, app, "shop")
	tok := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		tok[u] = pushUser(t, app, u)
	}
	a := login(t, nodes[0].wsAddr, "shop", tok["alice"])
	b := login(t, nodes[1].wsAddr, "shop", tok["bob"])
	c := login(t, nodes[2].wsAddr, "shop", tok["carol"])

	var private uint64
	t.Run("1:1 across nodes", func(t *testing.T) {
		if r := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hello bob"}`); !r.OK {
			t.Fatalf("send: %+v", r.Error)
		}
		got := decode[message](t, b.next("message"))
		if got.From != "alice" || got.Content.Text != "hello bob" || got.Seq != 1 {
			t.Fatalf("bob (n2) got %+v", got)
		}
		private = got.Session
		r := b.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi alice"}`, private))
		if decode[ack](t, r).Seq != 2 {
			t.Fatalf("reply: %s", r.raw)
		}
		if m := decode[message](t, a.next("message")); m.Content.Text != "hi alice" || m.Seq != 2 {
			t.Fatalf("alice (n1) got %+v", m)
		}
	})
	t.Run("a group with members on three nodes", func(t *testing.T) {
		g := a.do(`"action":"group_create","name":"team","uids":["bob","carol"]`)
		if !g.OK {
			t.Fatalf("group_create: %+v", g.Error)
		}
		sid := decode[struct {
			ID uint64 `json:"session_id"`
		}](t, g).ID
		for i, who := range []*client{a, b, c} {
			text := "from node " + strconv.Itoa(i+1)
			if r := who.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"%s"}`, sid, text)); !r.OK {
				t.Fatalf("group send on n%d: %+v", i+1, r.Error)
			}
			for j, other := range []*client{a, b, c} {
				if j == i {
					continue
				}
				if !waitMessage(other, text, 10*time.Second) {
					t.Fatalf("the member on n%d did not get %q sent on n%d", j+1, text, i+1)
				}
			}
		}
		for _, who := range []*client{a, b, c} {
			who.quiet("message", 200*time.Millisecond) // once each, no echo
		}
	})
	t.Run("typing crosses nodes", func(t *testing.T) {
		r := b.do(fmt.Sprintf(`"action":"typing","session_id":%d`, private))
		if !r.OK {
			t.Fatalf("typing: %+v", r.Error)
		}
		ev := decode[struct {
			Session uint64 `json:"session_id"`
			UID     string `json:"uid"`
		}](t, a.next("typing"))
		if ev.Session != private || ev.UID != "bob" {
			t.Fatalf("alice (n1) got typing %+v", ev)
		}
	})
	t.Run("presence crosses nodes", func(t *testing.T) {
		// erin, alice's private-session peer, comes online on n2: n2
		// announces her to alice on n1.
		erin := pushUser(t, app, "erin")
		if _, err := app.Send(context.Background(), apiclient.SendInput{From: "erin", To: "alice", Type: "text", Content: json.RawMessage(`{"text":"hi"}`)}); err != nil {
			t.Fatal(err)
		}
		e := login(t, nodes[1].wsAddr, "shop", erin)
		if ev := nextPresence(t, a, "erin"); !ev.Online {
			t.Fatalf("alice got %+v, want erin online", ev)
		}
		// She leaves n2: offline.
		e.conn.Close()
		if ev := nextPresence(t, a, "erin"); ev.Online {
			t.Fatalf("alice got %+v, want erin offline", ev)
		}
		// She comes back on n3: online again, announced by n3; and n1,
		// which knows her device only as a mirror, answers a query.
		login(t, nodes[2].wsAddr, "shop", erin)
		if ev := nextPresence(t, a, "erin"); !ev.Online {
			t.Fatalf("alice got %+v, want erin online", ev)
		}
		r := a.do(`"action":"presence","uids":["erin"]`)
		ps := decode[struct {
			Presence []presenceEv `json:"presence"`
		}](t, r).Presence
		if len(ps) != 1 || !ps[0].Online {
			t.Fatalf("presence query on n1: %s", r.raw)
		}
	})
	t.Run("single device policy kicks across nodes", func(t *testing.T) {
		// dave's first device on n1; the policy is set through n1, and
		// reaches n3 (which cached the app's settings at carol's login)
		// by an invalidation, before the second login happens there.
		old := loginDevice(t, nodes[0].wsAddr, tok["dave"], "web")
		if err := setDevices(t, appOn(nodes[0], app), "single"); err != nil {
			t.Fatal(err)
		}
		waitDevices(t, appOn(nodes[2], app), "single")
		loginDevice(t, nodes[2].wsAddr, tok["dave"], "android")
		old.wantKicked(t, "android", "single")
	})
	t.Run("chatctl subscribe on n1 sees n3's messages", func(t *testing.T) {
		lines := chatctlSubscribe(t, nodes[0].dir, "message;uid=carol")
		// n3 learns the subscription within a heartbeat: send until the
		// stream shows one.
		for i := 0; ; i++ {
			text := "through n3 #" + strconv.Itoa(i)
			if r := c.do(`"action":"send","to":"alice","type":"text","content":{"text":"` + text + `"}`); !r.OK {
				t.Fatalf("send on n3: %+v", r.Error)
			}
			select {
			case l := <-lines:
				var ev struct {
					Topic, Node, UID string
					Message          struct{ Content struct{ Text string } }
				}
				if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Topic != "message" || ev.Node != "n3" ||
					ev.UID != "carol" || !strings.HasPrefix(ev.Message.Content.Text, "through n3 #") {
					t.Fatalf("chatctl subscribe on n1 printed %s", l)
				}
				return
			case <-time.After(200 * time.Millisecond):
			}
			if i == 50 {
				t.Fatal("chatctl subscribe on n1 printed no message sent on n3")
			}
		}
	})
}

// waitDevices waits until node's app settings say policy.
func waitDevices(t *testing.T, app *apiclient.Client, policy string) {
	t.Helper()
	for i := 0; ; i++ {
		var st struct {
			Devices string `json:"devices"`
		}
		if err := app.Do(context.Background(), "GET", "/api/v1/app", nil, &st); err != nil {
			t.Fatal(err)
		}
		if st.Devices == policy {
			return
		}
		if i == 100 {
			t.Fatalf("the node still has devices %q, want %q", st.Devices, policy)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chatctlSubscribe runs `chatctl subscribe --json` against the node with
// data folder dir and returns its event lines (hello and heartbeats left
// out), once the stream has said hello.
func chatctlSubscribe(t *testing.T, dir string, filters ...string) <-chan string {
	t.Helper()
	cmd := exec.Command(chatctlBinary(t), append([]string{"subscribe", "--json", "--data", dir, "--admin-key", binAdminKey}, filters...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines, hello := make(chan string, 64), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, `{"topic":"hello"`):
				close(hello)
			case strings.HasPrefix(l, `{"topic":"heartbeat"`):
			default:
				lines <- l
			}
		}
	}()
	select {
	case <-hello:
	case <-time.After(10 * time.Second):
		t.Fatalf("chatctl subscribe said no hello; its stderr: %s", stderr)
	}
	return lines
}

// nextPresence waits for the next presence event about uid.
func nextPresence(t *testing.T, c *client, uid string) presenceEv {
	t.Helper()
	for {
		if ev := decode[presenceEv](t, c.next("presence")); ev.UID == uid {
			return ev
		}
	}
}

// clusterSender is one client of TestClusterKillNine: it sends its
// messages pipelined with cids, and when its node dies it reconnects to
// another and resends what was not acknowledged, with the same cids, as
// the SDK does.
type clusterSender struct {
	uid, token string
	node       int                  // index of the node it is connected to
	targets    func(i int) string   // message i's target: "to":"…" or "session_id":…
	acked      map[string]sendAcked // cid → ack
	moved      int                  // reconnections to another node
	resent     int                  // sends retried after a reconnection
	duplicates int                  // acks of a cid stored before (a retry of a stored send)
}

type sendAcked struct{ session, seq uint64 }

// run sends n messages, window at a time, until all are acknowledged.
// down(i) says whether node i was killed; addrs are the nodes' WebSocket
// addresses.
func (s *clusterSender) run(n, window int, addrs []string, down func(int) bool, progress *atomic.Int64) error {
	s.acked = map[string]sendAcked{}
	cid := func(i int) string { return s.uid + "-" + strconv.Itoa(i) }
	frameOf := func(i int) []byte {
		return []byte(`{"id":"` + cid(i) + `","action":"send",` + s.targets(i) + `,"type":"text","cid":"` + cid(i) +
			`","content":{"text":"` + cid(i) + `"}}`)
	}
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	pending := map[string]int{} // cid → message number, sent and not acknowledged
	next, attempts := 0, 0
	for len(s.acked) < n {
		if conn == nil {
			if attempts++; attempts > 50 {
				return fmt.Errorf("%s: could not reconnect", s.uid)
			}
			for down(s.node) {
				s.node = (s.node + 1) % len(addrs)
			}
			c, err := s.login(addrs[s.node])
			if err != nil {
				s.node = (s.node + 1) % len(addrs)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			conn = c
			for _, i := range pending { // retry the unacknowledged, same cids
				s.resent++
				if err := writeText(conn, frameOf(i)); err != nil {
					conn.Close()
					conn = nil
					break
				}
			}
			if conn == nil {
				continue
			}
		}
		for len(pending) < window && next < n {
			pending[cid(next)] = next
			next++
			if err := writeText(conn, frameOf(next-1)); err != nil {
				break // the read fails too, and the reconnect resends it
			}
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, op, err := wsutil.ReadServerData(conn)
		if err != nil {
			conn.Close()
			conn = nil
			s.moved++
			continue
		}
		if op != ws.OpText {
			continue
		}
		var r sendReply
		if json.Unmarshal(b, &r) != nil || r.ReplyTo == "" {
			continue // an event
		}
		i, ok := pending[r.ReplyTo]
		if !ok {
			continue
		}
		if !r.OK {
			// a commit the node could not make (the store's error, the
			// other node's death under its locks): retry the same cid.
			time.Sleep(20 * time.Millisecond)
			if err := writeText(conn, frameOf(i)); err != nil {
				conn.Close()
				conn = nil
			}
			continue
		}
		delete(pending, r.ReplyTo)
		if r.Data.Duplicate {
			s.duplicates++
		}
		s.acked[r.ReplyTo] = sendAcked{r.Data.Session, r.Data.Seq}
		progress.Add(1)
	}
	return nil
}

func (s *clusterSender) login(addr string) (net.Conn, error) {
	conn, _, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		return nil, err
	}
	if err := writeText(conn, []byte(`{"id":"login","action":"login","app":"shop","token":"`+s.token+`"}`)); err != nil {
		conn.Close()
		return nil, err
	}
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _, err := wsutil.ReadServerData(conn)
		if err != nil {
			conn.Close()
			return nil, err
		}
		var r sendReply
		if json.Unmarshal(b, &r) == nil && r.ReplyTo == "login" {
			if !r.OK {
				conn.Close()
				return nil, fmt.Errorf("login refused: %s", b)
			}
			return conn, nil
		}
	}
}

func writeText(conn net.Conn, b []byte) error {
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return wsutil.WriteClientText(conn, b)
}

// history reads a session's whole history through the HTTP API.
func history(t *testing.T, app *apiclient.Client, session uint64) map[uint64]apiclient.Message {
	t.Helper()
	stored := map[uint64]apiclient.Message{}
	var before uint64
	for {
		page, err := app.History(context.Background(), session, before, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return stored
		}
		for _, m := range page {
			stored[m.Seq] = m
			if before == 0 || m.Seq < before {
				before = m.Seq
			}
		}
		if before <= 1 {
			return stored
		}
	}
}

// TestClusterKillNine kills one node of three with SIGKILL while nine
// clients, three on each node, send pipelined with cids into one group
// and into private chats. The dead node's clients reconnect to another
// node and resend their unacknowledged messages with the same cids.
// Afterwards every message is stored exactly once, at the seq its ack
// named, and every session's seqs are gapless.
func TestClusterKillNine(t *testing.T) {
	dsn := testpg.Start(t).NewDatabase(t)
	// The routes authenticated with a secret (docs/cluster.md, Route
	// security): the cluster forms with it as without.
	nodes := startCluster(t, dsn, []string{"n1", "n2", "n3"}, "--send-rate", "0", "--request-rate", "0",
		"--nats-route-secret", "5e0c7d2a9b4f4e6a8c1d3f5b7a9e0c2d4f6b8a0c")
	app := nodes[0].app("shop")
	clusterReady(t, nodes, app, "shop")
	checkClusterStatus(t, nodes, []string{"n1", "n2", "n3"}) // clusterstatus_test.go
	const users, perUser, window = 9, 100, 4
	var uids []string
	senders := make([]*clusterSender, users)
	for k := range users {
		uid := "u" + strconv.Itoa(k)
		uids = append(uids, `"`+uid+`"`)
		senders[k] = &clusterSender{uid: uid, token: pushUser(t, app, uid), node: k % len(nodes)}
	}
	owner := login(t, nodes[0].wsAddr, "shop", pushUser(t, app, "owner"))
	g := owner.do(`"action":"group_create","name":"all","uids":[` + strings.Join(uids, ",") + `]`)
	if !g.OK {
		t.Fatalf("group_create: %+v", g.Error)
	}
	group := decode[struct {
		ID uint64 `json:"session_id"`
	}](t, g).ID
	owner.conn.Close()
	for k, s := range senders {
		peer := "u" + strconv.Itoa((k+1)%users)
		s.targets = func(i int) string {
			if i%2 == 0 {
				return `"session_id":` + strconv.FormatUint(group, 10)
			}
			return `"to":"` + peer + `"`
		}
	}

	addrs := []string{nodes[0].wsAddr, nodes[1].wsAddr, nodes[2].wsAddr}
	const victim = 2
	var killed atomic.Bool
	down := func(i int) bool { return i == victim && killed.Load() }
	var progress atomic.Int64
	errs := make(chan error, users)
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.run(perUser, window, addrs, down, &progress)
		}()
	}
	// The kill, once a third of the sends are acknowledged.
	for progress.Load() < users*perUser/3 {
		time.Sleep(5 * time.Millisecond)
	}
	killed.Store(true)
	nodes[victim].kill9()
	atKill := progress.Load()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	moved, resent, dups := 0, 0, 0
	for _, s := range senders {
		moved, resent, dups = moved+s.moved, resent+s.resent, dups+s.duplicates
	}
	if moved < 3 {
		t.Fatalf("%d reconnections, want the victim's 3 clients to have moved", moved)
	}
	t.Logf("%d of %d sends acknowledged at the kill; %d reconnections, %d sends retried, %d answered as duplicates",
		atKill, users*perUser, moved, resent, dups)

	// Every session through a surviving node's HTTP API.
	shop := appOn(nodes[0], app)
	sessions := map[uint64]map[uint64]apiclient.Message{}
	for _, s := range senders {
		for c, a := range s.acked {
			st, ok := sessions[a.session]
			if !ok {
				st = history(t, shop, a.session)
				sessions[a.session] = st
			}
			m, ok := st[a.seq]
			if !ok || m.CID != c {
				t.Fatalf("%s was acknowledged as %d/%d, which holds %+v", c, a.session, a.seq, m)
			}
		}
	}
	if len(sessions) != users+1 {
		t.Fatalf("messages in %d sessions, want %d (the group and %d pairs)", len(sessions), users+1, users)
	}
	total := 0
	for sid, st := range sessions {
		cids := map[string]uint64{}
		for seq := uint64(1); seq <= uint64(len(st)); seq++ {
			m, ok := st[seq]
			if !ok {
				t.Fatalf("session %d: seq %d missing of %d stored: a gap", sid, seq, len(st))
			}
			if m.CID == "" {
				continue
			}
			if prev, dup := cids[m.CID]; dup {
				t.Fatalf("session %d: cid %s stored twice, seqs %d and %d", sid, m.CID, prev, seq)
			}
			cids[m.CID] = seq
			total++
		}
	}
	if total != users*perUser {
		t.Fatalf("%d messages with cids stored, want %d", total, users*perUser)
	}
}

// TestClusterWalkthrough runs docs/cluster.md's three-node walkthrough as
// printed: the sh blocks after PostgreSQL's (which testpg plays), in one
// bash, with chatd and chatctl in its folder, the ports it shows replaced
// by free ones and CHATD_STORE naming a throw-away database. Then the
// users it made chat live between n1 and n2 with the tokens it printed.
func TestClusterWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	dsn := testpg.Start(t).NewDatabase(t)
	text, err := os.ReadFile(filepath.Join("..", "..", "docs", "cluster.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, walk, ok := strings.Cut(string(text), "\n## Walkthrough: three nodes on one machine\n")
	if !ok {
		t.Fatal("docs/cluster.md has no three-node walkthrough")
	}
	if i := strings.Index(walk, "\n### "); i >= 0 {
		walk = walk[:i]
	}
	var blocks []string
	for _, part := range strings.Split(walk, "```sh\n")[1:] {
		body, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, body)
	}
	if len(blocks) != 3 || !strings.Contains(blocks[0], "initdb") {
		t.Fatalf("want three sh blocks, PostgreSQL's first; found %d", len(blocks))
	}
	script := blocks[1] + blocks[2]
	// Then its "Uploads on a cluster" try: upload through n1, download
	// through n2 and n3 (psql's line only where psql is installed).
	_, up, _ := strings.Cut(string(text), "\n## Uploads on a cluster\n")
	up, _, _ = strings.Cut(up, "\n## ")
	var upload string
	for _, part := range strings.Split(up, "```sh\n")[1:] {
		if body, _, _ := strings.Cut(part, "```"); strings.Contains(body, "hello.txt") {
			upload = body
		}
	}
	if upload == "" {
		t.Fatal("docs/cluster.md's uploads section has no upload to try")
	}
	_, psqlErr := exec.LookPath("psql")
	if psqlErr != nil {
		upload = regexp.MustCompile(`(?m)^psql .*\n`).ReplaceAllString(upload, "")
	}
	script += upload

	// The ports as printed → free ones; the database → testpg's.
	printed := []string{"22886", "22887", "22896", "22897", "22906", "22907", "6222", "6223", "6224"}
	free := freeAddrs(t, len(printed))
	port := map[string]string{}
	for i, p := range printed {
		_, port[p], _ = net.SplitHostPort(free[i])
	}
	script = regexp.MustCompile(`\b(`+strings.Join(printed, "|")+`)\b`).ReplaceAllStringFunc(script, func(p string) string { return port[p] })
	script = regexp.MustCompile(`CHATD_STORE='[^']*'`).ReplaceAllString(script, "CHATD_STORE='"+dsn+"'")
	if !strings.Contains(script, dsn) {
		t.Fatal("the walkthrough does not set CHATD_STORE")
	}

	dir := t.TempDir()
	for name, bin := range map[string]string{"chatd": chatdBinary(t), "chatctl": chatctlBinary(t)} {
		if err := os.Symlink(bin, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Stop the nodes it started in the background, whatever happens.
	t.Cleanup(func() {
		b, _ := os.ReadFile(filepath.Join(dir, ".pids"))
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -e\ntrap 'jobs -p >.pids' EXIT\n"+script+`printf 'tokens %s %s\n' "$ALICE" "$BOB"`+"\n")
	cmd.Dir = dir
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CHATD_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs := ""
		for _, n := range []string{"n1", "n2", "n3"} {
			b, _ := os.ReadFile(filepath.Join(dir, n+".log"))
			logs += "\n" + n + ".log:\n" + tail(string(b), 2000)
		}
		t.Fatalf("walkthrough: %v\n%s%s", err, out, logs)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if !regexp.MustCompile(`joined the cluster .*node=` + n + ` `).Match(out) {
			t.Errorf("no \"joined the cluster\" line of %s:\n%s", n, out)
		}
	}
	if !strings.Contains(string(out), "hello from n1") {
		t.Errorf("n3's history does not show the message sent through n1:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^hello from n1\nhello from n1\n`).Match(out) {
		t.Errorf("the file uploaded through n1 was not served by n2 and n3:\n%s", out)
	}
	if psqlErr == nil && !regexp.MustCompile(`myshop \|\s+1 \|\s+13`).Match(out) {
		t.Errorf("the database does not hold the uploaded file:\n%s", out)
	}
	m := regexp.MustCompile(`(?m)^tokens (\S+) (\S+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no tokens in ALICE and BOB:\n%s", out)
	}
	a := login(t, "127.0.0.1:"+port["22886"], "myshop", string(m[1]))
	b := login(t, "127.0.0.1:"+port["22896"], "myshop", string(m[2]))
	// The nodes exchange their connections within a second of hearing
	// each other: retry until bob's device on n2 is known on n1.
	for n := 0; ; n++ {
		text := "live #" + strconv.Itoa(n)
		if r := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"` + text + `"}`); !r.OK {
			t.Fatalf("send: %+v", r.Error)
		}
		if waitMessage(b, text, 300*time.Millisecond) {
			break
		}
		if n == 100 {
			t.Fatalf("bob on n2 never got alice's message from n1:\n%s", out)
		}
	}
	t.Logf("walkthrough output:\n%s", out)
}

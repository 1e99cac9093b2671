//go:build linux

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMigratingPHPExample runs the PHP of docs/migrating.md (the block after
// <!-- verify:php -->, read from the doc so the test follows it) with php
// against a real chatd: the wokmanchat admin calls rewritten for chatd must
// push users (an issued token and the site's own), send messages of
// wokmanchat's numeric types, list sessions by keyword, read history newest
// first, read new messages oldest first, and count unread messages.
func TestMigratingPHPExample(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("CHATD_REQUIRE_INTEROP") != "" {
			t.Fatal("php is not installed (CHATD_REQUIRE_INTEROP is set)")
		}
		t.Skip("php is not installed: skipping docs/migrating.md's PHP example")
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "migrating.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- verify:php -->\\s*```php\\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/migrating.md has no verify:php block")
	}
	driver := `
$t1 = pushUser('1001', 'Ann', 'https://example.com/ann.png');
$t2 = pushUser('1002', 'Ben', '', 'site-session-0123456789abcdef');
$seqs = [
  createMsg('1001', '1002', 'hello Ben', 1),
  createMsg('1002', '1001', 'https://example.com/p.png', 2),
  createMsg('1001', '1002', json_encode(['title' => 'Order 42', 'url' => 'https://shop.example/o/42']), 4),
  createMsg('1002', '1001', 'https://example.com/v.mp3', 3),
];
$list = getSessionList('1002', 20, 'Ann');
$none = getSessionList('1002', 20, 'nobody');
$sid = $list[0]['session_id'];
$err = '';
try { createMsg('1001', 'ghost', 'x', 1); } catch (RuntimeException $e) { $err = $e->getMessage(); }
echo json_encode(['t1' => $t1, 't2' => $t2, 'seqs' => $seqs, 'list' => $list, 'none' => count($none),
  'hist' => getHistoryMessageList($sid, 0, 3), 'older' => getHistoryMessageList($sid, 2, 20),
  'new' => getNewMessageList($sid, 1, 2), 'ben' => getNewMessageCount('1002'),
  'ann' => getNewMessageCount('1001'), 'err' => $err]);
`
	dir := t.TempDir()
	script := filepath.Join(dir, "example.php")
	if err := os.WriteFile(script, append(m[1], driver...), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	s := startServer(t, data)
	ie := newImportApp(t, data, s, "wok")
	cmd := exec.Command(php, script)
	cmd.Env = append(os.Environ(), "CHATD_URL=http://"+s.ri.HTTPAddr, "CHATD_APP="+ie.c.App, "CHATD_SECRET="+ie.c.Secret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("php: %v\n%s", err, out)
	}
	type wokMsg struct {
		ID         uint64 `json:"id"`
		From       string `json:"from_uid"`
		Type       int    `json:"type"`
		Content    string `json:"content"`
		CreateTime int64  `json:"create_time"`
	}
	var got struct {
		T1, T2 string
		Seqs   []uint64
		List   []struct {
			SessionID uint64 `json:"session_id"`
			Peer      string `json:"peer"`
			Unread    int    `json:"unread"`
		}
		None     int
		Hist     []wokMsg
		Older    []wokMsg
		New      []wokMsg
		Ben, Ann int
		Err      string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("php printed %s: %v", out, err)
	}
	if len(got.T1) < 16 || got.T2 != "site-session-0123456789abcdef" {
		t.Fatalf("tokens: %q %q", got.T1, got.T2)
	}
	if len(got.Seqs) != 4 || got.Seqs[0] != 1 || got.Seqs[3] != 4 {
		t.Fatalf("seqs %v", got.Seqs)
	}
	if len(got.List) != 1 || got.List[0].Peer != "1001" || got.List[0].Unread != 0 || got.None != 0 {
		t.Fatalf("session list %+v (none: %d)", got.List, got.None)
	}
	ids := func(ms []wokMsg) (out []uint64) {
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	if h := ids(got.Hist); len(h) != 3 || h[0] != 4 || h[1] != 3 || h[2] != 2 {
		t.Fatalf("history (newest first) %v", h)
	}
	if h := ids(got.Older); len(h) != 1 || h[0] != 1 || got.Older[0].Content != "hello Ben" || got.Older[0].Type != 1 || got.Older[0].From != "1001" {
		t.Fatalf("history before 2: %+v", got.Older)
	}
	if got.Hist[2].Type != 2 || got.Hist[2].Content != "https://example.com/p.png" || got.Hist[0].Type != 3 || got.Hist[1].Type != 4 {
		t.Fatalf("types and contents: %+v", got.Hist)
	}
	if got.Hist[0].CreateTime < 1_600_000_000 || got.Hist[0].CreateTime > 1e11 {
		t.Fatalf("create_time is not unix seconds: %d", got.Hist[0].CreateTime)
	}
	if n := ids(got.New); len(n) != 2 || n[0] != 2 || n[1] != 3 {
		t.Fatalf("new messages after 1 (oldest first, 2 of them) %v", n)
	}
	// Ben sent seq 4, the last: nothing unread; Ann's last own is seq 3.
	if got.Ben != 0 || got.Ann != 1 {
		t.Fatalf("unread: ben %d ann %d", got.Ben, got.Ann)
	}
	if got.Err == "" || !regexp.MustCompile(`not_found`).MatchString(got.Err) {
		t.Fatalf("sending to an unknown user: %q", got.Err)
	}
}

// The example records of docs/migrating.md ("The records") import as
// printed: three users, a friendship, a group with an admin, and a
// private message, a group message and a system notice with their times.
func TestMigratingRecordsExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "migrating.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### The records\\s*```json\\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/migrating.md has no json block under \"### The records\"")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "export.jsonl")
	if err := os.WriteFile(file, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	s := startServer(t, data)
	ie := newImportApp(t, data, s, "doc")
	out, errOut, err := runImportCmd(t, ie.env, file)
	if err != nil {
		t.Fatalf("import: %v\n%s\n%s", err, out, errOut)
	}
	for _, w := range []string{"users: 3 new", "groups: 1 created", "1 admins set", "friendships: 1 added", "messages: 3 sent"} {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

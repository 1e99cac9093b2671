//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/proc"
	"chatd/storage"
)

// TestBackupWhileSending takes `chatd backup` from a real chatd while
// four senders keep sending, restores it into a fresh data folder with
// `chatd restore`, and checks that the restored store holds every message
// acknowledged before the backup began, with its seq and content.
func TestBackupWhileSending(t *testing.T) {
	dir := newDataDir(t)
	f := startForeground(t, nil, addrFlags(dir)...)
	ri := waitRunInfo(t, dir, f.cmd.Process.Pid)
	key, err := proc.ReadAdminKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := &apiclient.Client{BaseURL: ri.HTTPURL(), AdminKey: key}
	a, err := admin.CreateApp(ctx, "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	app := &apiclient.Client{BaseURL: ri.HTTPURL(), App: a.ID, Secret: a.Secret}
	const senders = 4
	for i := range senders + 1 {
		if _, err := app.PushUser(ctx, apiclient.PushUserInput{UID: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	type sent struct {
		session, seq uint64
		text         string
	}
	var (
		mu    sync.Mutex
		acked []sent
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 20000; n++ { // a bound; stop comes first
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("from u%d #%d", i+1, n)
				content, _ := json.Marshal(map[string]string{"text": text})
				r, err := app.Send(ctx, apiclient.SendInput{From: fmt.Sprintf("u%d", i+1), To: "u0", Type: "text", Content: content})
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, sent{r.Session, r.Seq, text})
				mu.Unlock()
			}
		}()
	}
	waitAcks := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d messages acknowledged in 30s", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAcks(300)
	mu.Lock()
	before := append([]sent(nil), acked...)
	mu.Unlock()
	file := filepath.Join(t.TempDir(), "backup.db")
	r := runBin(t, nil, chatdBin, "backup", file, "--data", dir)
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	close(stop)
	wg.Wait()
	if r.code != 0 || !strings.Contains(r.stdout, "from the running server") {
		t.Fatalf("chatd backup: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%d messages acknowledged before the backup, %d while it ran", len(before), during)

	fresh := newDataDir(t)
	r = runBin(t, nil, chatdBin, "restore", file, "--data", fresh)
	if r.code != 0 {
		t.Fatalf("chatd restore: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	st, err := storage.Open(filepath.Join(fresh, dbFile), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, m := range before {
		got, err := st.Messages(ctx, chat.SessionID(m.session), m.seq, m.seq, 1, false)
		if err != nil || len(got) != 1 || !strings.Contains(string(got[0].Content), m.text) {
			t.Fatalf("restored store: session %d seq %d = %v, %v; acknowledged %q before the backup", m.session, m.seq, got, err, m.text)
		}
	}
}

// TestRestoreRefusesToOverwrite: restoring onto a data folder that holds a
// database needs --force (which moves the old files aside, write-ahead
// log included), a running server refuses any restore, and a file that is
// not a whole chatd database is refused before anything is touched.
func TestRestoreRefusesToOverwrite(t *testing.T) {
	ctx := context.Background()
	// A backup to restore: a store with one app, copied by `chatd backup`
	// with no server running.
	src := newDataDir(t)
	st, err := storage.Open(filepath.Join(src, dbFile), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(ctx, &chat.Batch{Apps: []chat.App{{ID: "restored", Name: "R"}}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	file := filepath.Join(t.TempDir(), "b.db")
	if r := runBin(t, nil, chatdBin, "backup", file, "--data", src); r.code != 0 || !strings.Contains(r.stdout, "no server running") {
		t.Fatalf("offline backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runBin(t, nil, chatdBin, "backup", file, "--data", src); r.code != 1 || !strings.Contains(r.stderr, "exists; pass --force") {
		t.Fatalf("backup onto an existing file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The target holds a database of its own, with a WAL file.
	dst := newDataDir(t)
	st, err = storage.Open(filepath.Join(dst, dbFile), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(ctx, &chat.Batch{Apps: []chat.App{{ID: "old", Name: "O"}}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	before, _ := os.ReadFile(filepath.Join(dst, dbFile))

	r := runBin(t, nil, chatdBin, "restore", file, "--data", dst)
	if r.code != 1 || !strings.Contains(r.stderr, "pass --force") {
		t.Fatalf("restore onto a database without --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if now, _ := os.ReadFile(filepath.Join(dst, dbFile)); string(now) != string(before) {
		t.Fatal("the refused restore changed the database")
	}

	// Not a database: refused, nothing touched.
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, make([]byte, 64<<10), 0o600)
	if r := runBin(t, nil, chatdBin, "restore", junk, "--data", dst, "--force"); r.code != 1 || !strings.Contains(r.stderr, "not a usable backup") {
		t.Fatalf("restore of junk: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A running server refuses.
	f := startForeground(t, nil, addrFlags(dst)...)
	waitRunInfo(t, dst, f.cmd.Process.Pid)
	if r := runBin(t, nil, chatdBin, "restore", file, "--data", dst, "--force"); r.code != 1 || !strings.Contains(r.stderr, "stop it first") {
		t.Fatalf("restore under a running server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runBin(t, nil, chatdBin, "stop", "--data", dst); r.code != 0 {
		t.Fatalf("stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	f.wait(t, 30*time.Second)
	// As if the last server had crashed: a WAL that belongs to the old
	// database, which must not be replayed into the restored one.
	os.WriteFile(filepath.Join(dst, dbFile+"-wal"), []byte("left by a crash"), 0o600)

	// --force: the old database and its WAL are moved aside; the
	// restored one is in place and opens with the backup's contents.
	r = runBin(t, nil, chatdBin, "restore", file, "--data", dst, "--force")
	if r.code != 0 {
		t.Fatalf("restore --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	aside, _ := filepath.Glob(filepath.Join(dst, dbFile+"*.replaced-*"))
	if len(aside) != 2 {
		t.Fatalf("moved aside: %v; want the database and its WAL\n%s", aside, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dst, dbFile+"-wal")); err == nil {
		t.Fatal("the old WAL is still next to the restored database")
	}
	st, err = storage.Open(filepath.Join(dst, dbFile), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.App(ctx, "restored"); err != nil {
		t.Fatalf("restored app: %v", err)
	}
	if _, err := st.App(ctx, "old"); err == nil {
		t.Fatal("the old database's app is in the restored one")
	}
}

package interop_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/internal/teststack"
)

// artifactsDir is where browser tests put screenshots: $CHATD_ARTIFACTS
// (a relative path is taken from the repository's root), else
// <repo>/.artifacts/screenshots (not committed), in a folder per test.
func artifactsDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("CHATD_ARTIFACTS")
	if root == "" {
		root = filepath.Join(".artifacts", "screenshots")
	}
	if !filepath.IsAbs(root) {
		root = filepath.Join("..", "..", root) // the test runs in internal/interop
	}
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, t.Name())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The chat demo page chatd serves, in a real Chromium as three users:
// private chat, unread badge, read receipt, typing, an image upload with
// progress, recall, a group, 200 messages to a user who is offline shown
// exactly once and in order when he is back, and history paging
// (node/demo_chat.mjs does the clicking and the DOM checks).
func TestDemoChatPage(t *testing.T) {
	node := needNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(t, chromiumPath+" is not installed")
	}
	// chatd's default per-user limits (send_rate 20, request_rate 100):
	// alice's 200 sends outrun them, and the page must still get each one
	// through once (the SDK retries a rate_limited send with its cid).
	c := teststack.Start(t, t.TempDir(), teststack.Options{Demo: true, Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		Limits: chat.Limits{SendRate: 20, RequestRate: 100}})
	shots := artifactsDir(t)
	out := runNode(t, node, 300*time.Second, "demo_chat.mjs", "http://"+c.HTTPAddr, shots)
	var r struct {
		Browser     string   `json:"browser"`
		Checks      []string `json:"checks"`
		Screenshots int      `json:"screenshots"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("browser script output %q: %v", out, err)
	}
	t.Logf("Chromium %s; screenshots in %s", r.Browser, shots)
	for _, want := range []string{"unread count", "read receipt", "typing", "image upload", "recall", "group",
		"bob got all 200 exactly once, in order", "history paged back"} {
		if !strings.Contains(strings.Join(r.Checks, "\n"), want) {
			t.Errorf("the browser script did not check %q: %q", want, r.Checks)
		}
	}
	files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	if len(files) != r.Screenshots || len(files) == 0 {
		t.Errorf("%d screenshots in %s, the script took %d", len(files), shots, r.Screenshots)
	}
}

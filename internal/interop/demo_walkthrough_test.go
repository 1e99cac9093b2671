//go:build linux

package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/internal/teststack"
)

// The page of your own that docs/demo.md's walkthrough writes, opened in a
// real Chromium as the doc says: the sh blocks of the walkthrough run as
// printed (their "# →" answer lines are comments to bash; internal/e2e's
// TestDemoWalkthrough checks those) against a chatd with the demo on, and
// the HTML file they write is opened from its file:// URL. The widget must
// show its panel open, connect with the tag's token, and turn carol's
// first message into a service conversation (node/demo_widget_tag.mjs).
func TestDemoWalkthroughWidget(t *testing.T) {
	node := needNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(t, chromiumPath+" is not installed")
	}
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool+" is not on PATH")
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "demo.md"))
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, b := range docBlocks(t, string(doc), "demo.md", "Walkthrough") {
		if b.lang == "sh" {
			script.WriteString(b.body)
		}
	}
	c := &chatd{teststack.Start(t, t.TempDir(), teststack.Options{Demo: true,
		Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)})}
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(cleanEnv(), "CHATD_URL=http://"+c.HTTPAddr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("walkthrough failed: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.Bytes(), out)
	}
	pages, _ := filepath.Glob(filepath.Join(work, "*.html"))
	if len(pages) != 1 {
		t.Fatalf("the walkthrough wrote %d HTML files, want one: %q", len(pages), pages)
	}
	page := (&url.URL{Scheme: "file", Path: pages[0]}).String()
	out := runNode(t, node, 90*time.Second, "demo_widget_tag.mjs", page)
	var r struct {
		Browser  string   `json:"browser"`
		Title    string   `json:"title"`
		Status   string   `json:"status"`
		Messages []string `json:"messages"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("browser script output %q: %v", out, err)
	}
	t.Logf("Chromium %s: %+v", r.Browser, r)
	if r.Title != "ACME Store" || !strings.Contains(strings.Join(r.Messages, "\n"), "Where is my order?") {
		t.Fatalf("the widget showed %+v; want the title ACME Store and carol's message", r)
	}
}

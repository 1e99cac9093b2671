//go:build linux

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoWalkthrough runs docs/demo.md's walkthrough as printed (every
// line of its sh blocks, in one bash) against the chatd binary running in
// the foreground, where the demo is on by default, with only CHATD_URL set
// in the environment. Each command followed by "# → " lines must print
// them: one JSON line holds every field the doc shows (see jsonSubset),
// other lines are compared as text. The HTML file it writes must carry a
// widget tag that works: its script answers 200, its WebSocket URL is
// chatd's, and its token logs the demo user in.
func TestDemoWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	p := startBinary(t, 0) // the foreground server: demo = auto is on
	work := t.TempDir()
	base := "http://" + p.httpAddr
	shellWalkthrough(t, "demo.md", work, "CHATD_URL="+base)

	pages, _ := filepath.Glob(filepath.Join(work, "*.html"))
	if len(pages) != 1 {
		t.Fatalf("the walkthrough wrote %d HTML files, want the one page with the widget: %q", len(pages), pages)
	}
	html, err := os.ReadFile(pages[0])
	if err != nil {
		t.Fatal(err)
	}
	tag := regexp.MustCompile(`(?s)<script\s([^>]*)>`).FindSubmatch(html)
	if tag == nil {
		t.Fatalf("%s has no script tag:\n%s", filepath.Base(pages[0]), html)
	}
	attr := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z-]+)="([^"]*)"`).FindAllStringSubmatch(string(tag[1]), -1) {
		attr[m[1]] = m[2]
	}
	t.Logf("the widget tag: %q", attr)
	if attr["src"] != base+"/demo/widget.js" || attr["data-app"] != "demo" || attr["data-shop"] != "acme" ||
		attr["data-ws"] != "ws://"+p.wsAddr+"/" {
		t.Fatalf("the widget tag %q: want src %s/demo/widget.js, app demo, shop acme, ws ws://%s/", attr, base, p.wsAddr)
	}
	res, err := http.Get(attr["src"])
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(js), "widget.css") {
		t.Fatalf("GET %s: %d, %d bytes (not the widget)", attr["src"], res.StatusCode, len(js))
	}
	// The token is carol's: POST /v1/client's user action answers her profile.
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/client", strings.NewReader(`{"id":"1","action":"user"}`))
	req.Header.Set("X-Chatd-App", attr["data-app"])
	req.Header.Set("Authorization", "Bearer "+attr["data-token"])
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		OK   bool `json:"ok"`
		Data struct {
			UID string `json:"uid"`
		} `json:"data"`
	}
	err = json.NewDecoder(res.Body).Decode(&r)
	res.Body.Close()
	if err != nil || !r.OK || r.Data.UID != "carol" {
		t.Fatalf("the tag's token: %+v %v; want it to log carol in", r, err)
	}
}

// shellWalkthrough runs the sh blocks of docs/<doc>'s "## Walkthrough"
// section as printed, in one bash in dir with env added, and checks each
// command followed by "# → " lines: a single JSON line is checked with
// jsonSubset, anything else must be printed as it is shown.
func shellWalkthrough(t *testing.T, doc, dir string, env ...string) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "docs", doc))
	if err != nil {
		t.Fatal(err)
	}
	_, walk, ok := strings.Cut(string(text), "\n## Walkthrough\n")
	if !ok {
		t.Fatalf("docs/%s has no Walkthrough section", doc)
	}
	if i := strings.Index(walk, "\n## "); i >= 0 {
		walk = walk[:i]
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	var want [][]string
	in := false
	lines := strings.Split(walk, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
			continue
		case strings.HasPrefix(l, "```"):
			in = false
			continue
		case !in, strings.HasPrefix(l, "# → "):
			continue
		}
		var shown []string
		for j := i + 1; j < len(lines) && strings.HasPrefix(lines[j], "# → "); j++ {
			shown = append(shown, strings.TrimPrefix(lines[j], "# → "))
		}
		if shown == nil {
			script.WriteString(l + "\n")
			continue
		}
		fmt.Fprintf(&script, "echo '@@@begin'; %s; echo '@@@end'\n", l)
		want = append(want, shown)
	}
	if len(want) < 5 {
		t.Fatalf("docs/%s: found only %d checked commands in the walkthrough", doc, len(want))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s\nstdout:\n%s", err, stderr.Bytes(), out)
	}
	var got []string
	for _, part := range strings.Split(string(out), "@@@begin\n")[1:] {
		body, _, ok := strings.Cut(part, "@@@end\n")
		if !ok {
			t.Fatalf("unterminated answer %q", part)
		}
		got = append(got, strings.TrimSpace(body))
	}
	if len(got) != len(want) {
		t.Fatalf("%d answers for %d checked commands:\n%s", len(got), len(want), out)
	}
	for i, w := range want {
		var wj, gj any
		if len(w) == 1 && strings.HasPrefix(w[0], "{") {
			if err := json.Unmarshal([]byte(w[0]), &wj); err != nil {
				t.Fatalf("docs/%s: answer %d is not JSON: %v: %s", doc, i+1, err, w[0])
			}
			if err := json.Unmarshal([]byte(got[i]), &gj); err != nil {
				t.Errorf("answer %d is not JSON: %v: %s", i+1, err, got[i])
			} else if !jsonSubset(wj, gj) {
				t.Errorf("answer %d\n got: %s\nwant: %s", i+1, got[i], w[0])
			}
			continue
		}
		if got[i] != strings.Join(w, "\n") {
			t.Errorf("answer %d\n got:\n%s\nwant:\n%s", i+1, got[i], strings.Join(w, "\n"))
		}
	}
}

//go:build linux

package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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

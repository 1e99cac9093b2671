//go:build linux

package interop_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatd/internal/proc"
)

// TestSDKWalkthrough runs docs/sdk.md's "Walkthrough" as printed: its sh
// blocks in one bash, in a folder laid out like the repository's root
// (chatd and chatctl built from the tree, sdk/js/dist/index.js bundled
// from the SDK's source, the ws package in sdk/js/node_modules as the doc
// asks for Node before 22), and its js block saved where the prose says.
// What each sh block followed by a text block prints must be that text,
// line for line: both users log in, bob receives alice's message, misses
// three while offline and gets each once when back, over a WebSocket and
// over long-poll.
//
// The only things it adds are in the environment: CHATD_WS_ADDR and
// CHATD_HTTP_ADDR put the server on free loopback ports, and after the
// doc's `./chatd daemon` CHATD_WS_URL and CHATD_HTTP_URL (which the doc's
// script reads) are set to the addresses it got.
func TestSDKWalkthrough(t *testing.T) {
	node := needNode(t)
	for _, tool := range []string{"bash", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool+" is not on PATH")
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "sdk.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, string(doc), "sdk.md", "Walkthrough")

	work := t.TempDir()
	bundle := buildSDK(t, node)
	for _, cmd := range []string{"chatd", "chatctl"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(work, cmd), "chatd/cmd/"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	js, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "sdk", "js", "dist", "index.js"), js)
	ws, err := filepath.Abs(filepath.Join(nodeDir, "node_modules", "ws"))
	if err != nil {
		t.Fatal(err)
	}
	mods := filepath.Join(work, "sdk", "js", "node_modules")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ws, filepath.Join(mods, "ws")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopLeftover(t, filepath.Join(work, "data")) })

	// The script: every sh block; the js block saved where the prose
	// before it says; a text block is what the sh block before it prints.
	saveRE := regexp.MustCompile("Save this as\\s+`([^`]+)`")
	var script strings.Builder
	script.WriteString("set -e\n")
	var want []string
	daemon := false
	for i, b := range blocks {
		switch b.lang {
		case "sh":
			checked := i+1 < len(blocks) && blocks[i+1].lang == "text"
			if checked {
				script.WriteString("echo @@@begin\n")
			}
			for _, l := range strings.Split(b.body, "\n") {
				script.WriteString(l + "\n")
				if strings.TrimSpace(l) == "./chatd daemon" {
					daemon = true
					script.WriteString(`export CHATD_WS_URL=$(node -p 'const r = JSON.parse(require("fs").readFileSync("data/chatd.run")); "ws://" + r.ws_addr + "/"')` + "\n")
					script.WriteString(`export CHATD_HTTP_URL=$(node -p 'const r = JSON.parse(require("fs").readFileSync("data/chatd.run")); "http://" + r.http_addr')` + "\n")
				}
			}
			if checked {
				script.WriteString("echo @@@end\n")
				want = append(want, strings.TrimSpace(blocks[i+1].body))
			}
		case "js":
			m := saveRE.FindStringSubmatch(b.prose)
			if m == nil {
				t.Fatalf("docs/sdk.md: the js block of the walkthrough does not follow \"Save this as `FILE`\":\n%s", b.prose)
			}
			writeFile(t, filepath.Join(work, m[1]), []byte(b.body))
		case "text":
		default:
			t.Fatalf("docs/sdk.md: the walkthrough has a ```%s block this test cannot run", b.lang)
		}
	}
	if !daemon || len(want) < 2 {
		t.Fatalf("docs/sdk.md walkthrough: chatd started %v, %d checked outputs; want a start and two", daemon, len(want))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(cleanEnv(), "CHATD_WS_ADDR=127.0.0.1:0", "CHATD_HTTP_ADDR=127.0.0.1:0")
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.Bytes(), out)
	}
	got := between(t, string(out))
	if len(got) != len(want) {
		t.Fatalf("%d outputs for %d checked blocks:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("output %d:\n got:\n%s\nwant (docs/sdk.md):\n%s", i+1, got[i], want[i])
		}
	}
	if _, err := proc.ReadRunInfo(filepath.Join(work, "data")); err == nil {
		t.Errorf("chatd still runs after the walkthrough: it should end with ./chatd stop")
	}
}

// docBlock is one fenced code block of a doc.
type docBlock struct {
	lang, body string
	prose      string // the paragraph before it
}

var fenceRE = regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```")

// docBlocks returns the fenced blocks of the doc's section "## title", in
// order.
func docBlocks(t *testing.T, doc, name, title string) []docBlock {
	t.Helper()
	_, sec, ok := strings.Cut(doc, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("docs/%s has no section %q", name, title)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var out []docBlock
	last := 0
	for _, m := range fenceRE.FindAllStringSubmatchIndex(sec, -1) {
		before := strings.TrimRight(sec[last:m[0]], " \n")
		if i := strings.LastIndex(before, "\n\n"); i >= 0 {
			before = before[i+2:]
		}
		out = append(out, docBlock{lang: sec[m[2]:m[3]], body: sec[m[4]:m[5]], prose: before})
		last = m[1]
	}
	return out
}

// between returns what was printed between each @@@begin and @@@end line.
func between(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, part := range strings.Split(out, "@@@begin\n")[1:] {
		body, _, ok := strings.Cut(part, "@@@end\n")
		if !ok {
			t.Fatalf("unterminated output %q", part)
		}
		got = append(got, strings.TrimSpace(body))
	}
	return got
}

// cleanEnv is the test's environment without CHATD_ settings from the
// developer's shell.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATD_") && !strings.HasPrefix(kv, proc.ChildEnv) {
			env = append(env, kv)
		}
	}
	return env
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stopLeftover stops a daemon the walkthrough started if the test failed
// before the doc stopped it.
func stopLeftover(t *testing.T, data string) {
	pid, err := proc.ReadPID(data)
	if err != nil || !proc.Alive(pid) {
		return
	}
	t.Logf("stopping the walkthrough's chatd (pid %d)", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 200 && proc.Alive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if proc.Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// nodeDir holds package.json, package-lock.json and the Node scripts.
const nodeDir = "node"

// chromiumPath is Debian's chromium package; no downloaded browser is used.
const chromiumPath = "/usr/bin/chromium"

// missing skips the test because an external tool is not installed, or
// fails it when CHATD_REQUIRE_INTEROP=1 (CI installs everything, so a
// missing tool there is a broken setup, not a reason to skip).
func missing(t *testing.T, what string) {
	t.Helper()
	msg := what + " (install with: apt-get install -y chromium nodejs npm && (cd internal/interop/node && npm ci))"
	if os.Getenv("CHATD_REQUIRE_INTEROP") == "1" {
		t.Fatalf("CHATD_REQUIRE_INTEROP=1 but %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// needNode returns the node binary, after checking that the npm packages
// are installed.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not on PATH")
	}
	for _, pkg := range []string{"ws", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", pkg, "package.json")); err != nil {
			missing(t, "internal/interop/node/node_modules/"+pkg+" is not installed")
		}
	}
	return node
}

// runNode runs a script from nodeDir with args, bounded by timeout, and
// returns its stdout. A non-zero exit fails the test with its stderr.
func runNode(t *testing.T, node string, timeout time.Duration, script string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = nodeDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s", script, err, stderr.Bytes(), stdout.Bytes())
	}
	if stderr.Len() > 0 {
		t.Logf("node %s stderr:\n%s", script, stderr.Bytes())
	}
	return stdout.Bytes()
}

// nodeReport is the JSON line the ws script prints.
type nodeReport struct {
	Library    string   `json:"library"`
	Compress   bool     `json:"compress"`
	Extensions string   `json:"extensions"`
	Checks     []string `json:"checks"`
}

// Node's ws package against the echo server, compression on and off.
func TestNodeWS(t *testing.T) {
	node := needNode(t)
	for _, compress := range []bool{true, false} {
		t.Run("compression="+strconv.FormatBool(compress), func(t *testing.T) {
			s := startEcho(t, compress)
			flag := "0"
			if compress {
				flag = "1"
			}
			out := runNode(t, node, 90*time.Second, "ws_interop.js", "ws://"+s.Addr()+"/chat", flag,
				strconv.Itoa(messageLimit), strconv.Itoa(int(idleTimeout/time.Millisecond)))
			var r nodeReport
			if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
				t.Fatalf("ws script output %q: %v", out, err)
			}
			t.Logf("%s, extensions %q: %v", r.Library, r.Extensions, r.Checks)
			if r.Compress != compress || len(r.Checks) < 5 {
				t.Fatalf("report %+v", r)
			}
			st := s.Stats()
			if compress != (st.FramesCompressed > 0) {
				t.Fatalf("compression %v but %d frames went out compressed", compress, st.FramesCompressed)
			}
		})
	}
}

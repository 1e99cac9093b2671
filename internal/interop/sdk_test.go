package interop_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/internal/teststack"
)

// sdkDir is the JavaScript SDK's package, relative to this package.
const sdkDir = "../../sdk/js"

// buildSDK bundles the SDK's source into one ESM file with the SDK's own
// pinned esbuild, so the test runs the code in the tree, not a stale dist/.
func buildSDK(t *testing.T, node string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "esbuild", "package.json")); err != nil {
		missing(t, "sdk/js/node_modules is not installed (cd sdk/js && npm ci)")
	}
	out := filepath.Join(t.TempDir(), "chatd-sdk.mjs")
	script := `require("esbuild").buildSync({entryPoints: ["src/index.ts"], bundle: true, format: "esm",
		target: "es2020", outfile: process.argv[1], logLevel: "warning"})`
	cmd := exec.Command(node, "-e", script, out)
	cmd.Dir = sdkDir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, b)
	}
	return out
}

// The SDK against a real chatd: user A is offline while B sends 200
// messages (over the server's send rate, so B's SDK retries refused sends)
// and A queues sends, one of them in flight when the connection died. A
// comes back and must hold exactly what the server stored, each message
// once, in seq order; each of A's sends is stored once. The checks are in
// node/sdk_resync.mjs; this test gives it a server and reads its report.
func TestSDKResyncAndSendQueue(t *testing.T) {
	const n = 200
	var r struct {
		Received     int      `json:"received"`
		Stored       int      `json:"stored"`
		FromB        int      `json:"from_b"`
		ConnectionsA int      `json:"connections_a"`
		BRateLimited int      `json:"b_rate_limited"`
		Errors       []string `json:"errors"`
	}
	runSDKScript(t, teststack.Options{Limits: chat.Limits{SendRate: 100, SendBurst: 40}}, "sdkapp",
		[]string{"alice", "bob"}, 90*time.Second, &r, "sdk_resync.mjs", "{ws}", "sdkapp",
		"{token:alice}", "{token:bob}", "bob", strconv.Itoa(n))
	if r.FromB != n || r.Received != n+10 || r.Stored != r.Received || len(r.Errors) != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.BRateLimited == 0 {
		t.Fatalf("no send of B's was refused rate_limited; the retry path went untested")
	}
	if r.ConnectionsA < 2 {
		t.Fatalf("A connected %d times; the test did not take it offline", r.ConnectionsA)
	}
}

// runSDKScript starts a chatd with o, creates app with users uids (each
// with a token), bundles the SDK and runs a node script with args, in
// which {ws} and {http} stand for the server's WebSocket and HTTP base
// URLs and {token:UID} for a user's token; it decodes the script's JSON
// report line into report.
func runSDKScript(t *testing.T, o teststack.Options, app string, uids []string, timeout time.Duration, report any,
	script string, args ...string) {
	t.Helper()
	node := needNode(t)
	bundle := buildSDK(t, node)
	o.Log = zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	s := &chatd{teststack.Start(t, t.TempDir(), o)}
	tok := s.tokens(t, app, uids...)
	repl := []string{"{ws}", "ws://" + s.WSAddr + "/", "{http}", "http://" + s.HTTPAddr}
	for i, uid := range uids {
		repl = append(repl, "{token:"+uid+"}", tok[i])
	}
	r := strings.NewReplacer(repl...)
	full := []string{bundle}
	for _, a := range args {
		full = append(full, r.Replace(a))
	}
	out := runNode(t, node, timeout, script, full...)
	if err := json.Unmarshal(bytes.TrimSpace(out), report); err != nil {
		t.Fatalf("%s output %q: %v", script, out, err)
	}
	t.Logf("report %+v", report)
}

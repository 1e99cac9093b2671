package interop_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	node := needNode(t)
	bundle := buildSDK(t, node)
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	s := &chatd{teststack.Start(t, t.TempDir(), teststack.Options{Log: log,
		Limits: chat.Limits{SendRate: 100, SendBurst: 40}})}
	tok := s.tokens(t, "sdkapp", "alice", "bob")
	const n = 200
	out := runNode(t, node, 90*time.Second, "sdk_resync.mjs", bundle, "ws://"+s.WSAddr+"/", "sdkapp", tok[0], tok[1], "bob", strconv.Itoa(n))
	var r struct {
		Received     int      `json:"received"`
		Stored       int      `json:"stored"`
		FromB        int      `json:"from_b"`
		ConnectionsA int      `json:"connections_a"`
		BRateLimited int      `json:"b_rate_limited"`
		Errors       []string `json:"errors"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("sdk script output %q: %v", out, err)
	}
	t.Logf("report %+v", r)
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

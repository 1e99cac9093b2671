package webhook_test

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatd/chat"
)

// The verification snippets of docs/webhooks.md, run for real in their
// own language against signatures chatd makes (chat.SignWebhook, what
// the dispatcher sends). A language whose tool is missing is skipped,
// unless CHATD_REQUIRE_INTEROP is set (CI installs them).

// snippet returns the code block that follows <!-- verify:lang --> in
// docs/webhooks.md.
func snippet(t *testing.T, lang string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "webhooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- verify:" + lang + " -->\\s*```[a-z]*\\n(.*?)```")
	m := re.FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/webhooks.md has no verify:%s snippet", lang)
	}
	return string(m[1])
}

type verifyCase struct {
	name            string
	secret, ts, sig string
	body            []byte
	want            bool
}

func cases() []verifyCase {
	const secret = "whsec_0123456789abcdef"
	body := []byte(`{"id":"1.wh_x","type":"message.created","data":{"text":"héllo ✓ \"quoted\""}}`)
	now := time.Now().Unix()
	sig := chat.SignWebhook(secret, now, body)
	old := now - 3600
	return []verifyCase{
		{name: "valid", secret: secret, ts: strconv.FormatInt(now, 10), sig: sig, body: body, want: true},
		{name: "tampered body", secret: secret, ts: strconv.FormatInt(now, 10), sig: sig, body: append([]byte(nil), append(body[:len(body)-1], ' ', '}')...), want: false},
		{name: "wrong secret", secret: secret + "x", ts: strconv.FormatInt(now, 10), sig: sig, body: body, want: false},
		{name: "replayed an hour later", secret: secret, ts: strconv.FormatInt(old, 10), sig: chat.SignWebhook(secret, old, body), body: body, want: false},
		{name: "timestamp changed", secret: secret, ts: strconv.FormatInt(now+1, 10), sig: sig, body: body, want: false},
	}
}

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CHATD_REQUIRE_INTEROP") != "" {
			t.Fatalf("%s is not installed (CHATD_REQUIRE_INTEROP is set)", tool)
		}
		t.Skipf("%s is not installed: skipping its docs/webhooks.md snippet", tool)
	}
	return p
}

// runCases runs cmd once per case with SECRET, TS, SIG and BODY_B64 in its
// environment; it must print true or false.
func runCases(t *testing.T, cmd func() *exec.Cmd) {
	t.Helper()
	for _, c := range cases() {
		x := cmd()
		x.Env = append(os.Environ(), "SECRET="+c.secret, "TS="+c.ts, "SIG="+c.sig, "BODY_B64="+base64.StdEncoding.EncodeToString(c.body))
		out, err := x.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != strconv.FormatBool(c.want) {
			t.Errorf("%s: printed %q, want %v", c.name, got, c.want)
		}
	}
}

func TestDocsVerifyGo(t *testing.T) {
	goTool := need(t, "go")
	src := `package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
)

` + snippet(t, "go") + `
func main() {
	body, _ := base64.StdEncoding.DecodeString(os.Getenv("BODY_B64"))
	h := http.Header{}
	h.Set("X-Chatd-Timestamp", os.Getenv("TS"))
	h.Set("X-Chatd-Signature", os.Getenv("SIG"))
	fmt.Print(VerifyWebhook(os.Getenv("SECRET"), h, body, time.Now()))
}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "verify")
	build := exec.Command(goTool, "build", "-o", bin, "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "GO111MODULE=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the Go snippet: %v\n%s", err, out)
	}
	runCases(t, func() *exec.Cmd { return exec.Command(bin) })
}

func TestDocsVerifyNode(t *testing.T) {
	node := need(t, "node")
	src := snippet(t, "node") + `
const h = {'x-chatd-timestamp': process.env.TS, 'x-chatd-signature': process.env.SIG};
process.stdout.write(String(verifyWebhook(process.env.SECRET, h, Buffer.from(process.env.BODY_B64, 'base64'))));
`
	runCases(t, func() *exec.Cmd { return exec.Command(node, "-e", src) })
}

func TestDocsVerifyPython(t *testing.T) {
	py := need(t, "python3")
	src := snippet(t, "python") + `
import base64, os
ok = verify_webhook(os.environ["SECRET"], {"X-Chatd-Timestamp": os.environ["TS"], "X-Chatd-Signature": os.environ["SIG"]},
                    base64.b64decode(os.environ["BODY_B64"]))
print("true" if ok else "false", end="")
`
	runCases(t, func() *exec.Cmd { return exec.Command(py, "-c", src) })
}

func TestDocsVerifyPHP(t *testing.T) {
	php := need(t, "php")
	src := snippet(t, "php") + `
echo verify_webhook(getenv('SECRET'), getenv('TS'), getenv('SIG'), base64_decode(getenv('BODY_B64'))) ? 'true' : 'false';
`
	runCases(t, func() *exec.Cmd { return exec.Command(php, "-r", src) })
}

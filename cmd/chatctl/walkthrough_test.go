package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCustomerServiceWalkthrough runs the walkthrough of
// docs/customer-service.md with its commands as printed, against a fresh
// server, and checks what its "# → …" and "# ✗ …" lines promise about each
// command's output. The doc is parsed, not copied: when it changes, this
// test follows it.
func TestCustomerServiceWalkthrough(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "customer-service.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps := parseServiceWalkthrough(t, string(doc))
	dir := filepath.Join(t.TempDir(), "data")
	startServer(t, dir)
	var app struct{ ID, Secret string }
	mustJSON(t, map[string]string{"CHATD_DATA_DIR": dir}, &app, "app", "create", "--name", "Walk", "--id", "walk")
	creds := map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": app.ID, "CHATD_SECRET": app.Secret}
	for _, st := range steps {
		out, errOut, err := ctl(t, creds, st.args[1:]...)
		if err != nil {
			t.Fatalf("%s\nfailed: %v\n%s", st.line, err, errOut)
		}
		rest := out
		for _, want := range st.want {
			i := strings.Index(rest, want)
			if i < 0 {
				t.Fatalf("%s\noutput lacks %s (in order):\n%s", st.line, want, out)
			}
			rest = rest[i+len(want):]
		}
		for _, never := range st.never {
			if strings.Contains(out, never) {
				t.Fatalf("%s\noutput has %s:\n%s", st.line, never, out)
			}
		}
	}
}

type walkCmd struct {
	line  string
	args  []string
	want  []string // must appear, in order
	never []string
}

var shFence = regexp.MustCompile("(?s)```sh\n(.*?)```")

func parseServiceWalkthrough(t *testing.T, doc string) []walkCmd {
	t.Helper()
	const title = "\n## Walkthrough\n"
	i := strings.Index(doc, title)
	if i < 0 {
		t.Fatal("docs/customer-service.md has no section \"## Walkthrough\"")
	}
	sec := doc[i+len(title):]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	var out []walkCmd
	var want, never []string
	for _, m := range shFence.FindAllStringSubmatch(sec, -1) {
		for _, line := range strings.Split(m[1], "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "":
			case strings.HasPrefix(line, "# → "):
				want = strings.Split(strings.TrimPrefix(line, "# → "), " … ")
			case strings.HasPrefix(line, "# ✗ "):
				never = append(never, strings.TrimPrefix(line, "# ✗ "))
			case strings.HasPrefix(line, "#"):
			default:
				args := svcShellWords(t, line)
				if len(args) < 2 || (args[0] != "chatctl" && args[0] != "./chatctl") {
					t.Fatalf("walkthrough line is not a chatctl command: %s", line)
				}
				out = append(out, walkCmd{line: line, args: args, want: want, never: never})
				want, never = nil, nil
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("walkthrough: only %d commands found", len(out))
	}
	return out
}

// shellWords splits a command line as a POSIX shell does for the subset
// the doc uses: words separated by spaces, single-quoted strings kept
// whole.
func svcShellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, any := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			in, any = !in, true
		case r == ' ' && !in:
			if any {
				words = append(words, cur.String())
				cur.Reset()
				any = false
			}
		default:
			if !in && strings.ContainsRune("\"$`\\|&;<>()*?", r) {
				t.Fatalf("walkthrough line uses shell syntax this test does not run: %s", s)
			}
			cur.WriteRune(r)
			any = true
		}
	}
	if in {
		t.Fatalf("unterminated quote: %s", s)
	}
	if any {
		words = append(words, cur.String())
	}
	return words
}

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestContactsWalkthrough runs docs/contacts.md's walkthrough as printed:
// every line of its sh blocks, in one bash, against a real server, with
// only SECRET and CHATD_URL set in the environment. Each command followed
// by a "# → {…}" line must answer JSON holding every field that line
// shows (objects may carry more fields; arrays must match in length).
func TestContactsWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "contacts.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, walk, ok := strings.Cut(string(doc), "\n## Walkthrough\n")
	if !ok {
		t.Fatal("docs/contacts.md has no Walkthrough section")
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	var want []string
	in := false
	lines := strings.Split(walk, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
			continue
		case strings.HasPrefix(l, "```"):
			in = false
			continue
		case !in:
			continue
		}
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "# → ") {
			fmt.Fprintf(&script, "echo '@@@begin'; %s; echo '@@@end'\n", l)
			want = append(want, strings.TrimPrefix(lines[i+1], "# → "))
			continue
		}
		script.WriteString(l + "\n")
	}
	if len(want) < 10 {
		t.Fatalf("found only %d checked commands in the walkthrough", len(want))
	}

	s := start(t, t.TempDir(), options{})
	a, err := s.Admin.CreateApp(context.Background(), "myshop", "My shop")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Env = append(os.Environ(), "SECRET="+a.Secret, "CHATD_URL=http://"+s.HTTPAddr)
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
	for i := range want {
		var w, g any
		if err := json.Unmarshal([]byte(want[i]), &w); err != nil {
			t.Fatalf("the doc's answer %d is not JSON: %v: %s", i+1, err, want[i])
		}
		if err := json.Unmarshal([]byte(got[i]), &g); err != nil {
			t.Fatalf("answer %d is not JSON: %v: %s", i+1, err, got[i])
		}
		if !jsonSubset(w, g) {
			t.Errorf("answer %d\n got: %s\nwant: %s", i+1, got[i], want[i])
		}
	}
}

// jsonSubset reports whether got holds everything want shows.
func jsonSubset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if gv, ok := g[k]; !ok || !jsonSubset(v, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !jsonSubset(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

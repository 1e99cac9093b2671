package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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

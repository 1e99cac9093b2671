package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"chatd/bench"
)

// perfDoc is the performance page, from this package's folder.
var perfDoc = filepath.Join("..", "..", "docs", "performance.md")

// docCommand is one command line of a ```sh block.
type docCommand struct {
	line int
	args []string
}

// shCommands returns the command lines of the doc's ```sh blocks whose
// first word is one of names, comments and the program's name removed.
func shCommands(t *testing.T, doc string, names ...string) []docCommand {
	t.Helper()
	var cmds []docCommand
	inSh := false
	for i, l := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "```"):
			inSh = !inSh && strings.TrimSpace(strings.TrimPrefix(l, "```")) == "sh"
			continue
		case !inSh:
			continue
		}
		if c := strings.Index(l, "#"); c >= 0 {
			l = l[:c]
		}
		f := strings.Fields(l)
		if len(f) == 0 || !slices.Contains(names, f[0]) {
			continue
		}
		cmds = append(cmds, docCommand{line: i + 1, args: f[1:]})
	}
	return cmds
}

// TestPerformanceDocChatbenchCommands runs every chatbench command of
// docs/performance.md through chatbench's own flag parsing, with an
// impossible --duration appended so that it stops right after: a renamed
// scenario or flag fails here rather than on a reader's machine.
func TestPerformanceDocChatbenchCommands(t *testing.T) {
	b, err := os.ReadFile(perfDoc)
	if err != nil {
		t.Fatal(err)
	}
	cmds := shCommands(t, string(b), "chatbench", "./chatbench")
	seen := map[string]bool{}
	for _, c := range cmds {
		if len(c.args) == 0 {
			t.Errorf("line %d: chatbench with no command", c.line)
			continue
		}
		if strings.ContainsAny(strings.Join(c.args, " "), "'\"$|;&<>`\\…") {
			t.Errorf("line %d: %q: keep chatbench lines free of shell syntax so that they can be checked", c.line, c.args)
			continue
		}
		seen[c.args[0]] = true
		var out, errb bytes.Buffer
		code := run(context.Background(), append(slices.Clone(c.args), "--duration", "0s"), &out, &errb)
		if code != exitError || !strings.Contains(errb.String(), "must be positive") {
			t.Errorf("line %d: chatbench %s: exit %d, want the flags accepted and only the appended --duration 0s refused; stderr:\n%s",
				c.line, strings.Join(c.args, " "), code, errb.String())
		}
		if c.args[0] == "probe" {
			for i, a := range c.args {
				if a == "--parts" && i+1 < len(c.args) {
					for _, p := range strings.Split(c.args[i+1], ",") {
						if !slices.Contains(bench.ProbeParts, p) {
							t.Errorf("line %d: unknown probe part %q", c.line, p)
						}
					}
				}
			}
		}
	}
	for _, want := range []string{"probe", "connect", "p2p", "group"} {
		if !seen[want] {
			t.Errorf("no chatbench %s command in %s's sh blocks", want, perfDoc)
		}
	}
}

// TestPerformanceDocBenchmarks checks that every `go test -bench PATTERN
// ./pkg` line of docs/performance.md names benchmarks that exist in pkg.
func TestPerformanceDocBenchmarks(t *testing.T) {
	b, err := os.ReadFile(perfDoc)
	if err != nil {
		t.Fatal(err)
	}
	benchFunc := regexp.MustCompile(`(?m)^func Benchmark(\w+)\(`)
	n := 0
	for _, c := range shCommands(t, string(b), "go") {
		if len(c.args) == 0 || c.args[0] != "test" {
			continue
		}
		var pattern, pkg string
		for i, a := range c.args {
			switch {
			case a == "-bench" && i+1 < len(c.args):
				pattern = strings.Trim(c.args[i+1], `'"`)
			case strings.HasPrefix(a, "./"):
				pkg = a
			}
		}
		if pattern == "" || pkg == "" {
			continue
		}
		n++
		files, err := filepath.Glob(filepath.Join("..", "..", pkg, "*_test.go"))
		if err != nil || len(files) == 0 {
			t.Errorf("line %d: no test files in %s", c.line, pkg)
			continue
		}
		var have []string
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range benchFunc.FindAllStringSubmatch(string(src), -1) {
				have = append(have, m[1])
			}
		}
		for _, name := range strings.Split(pattern, "|") {
			if !slices.Contains(have, name) {
				t.Errorf("line %d: no Benchmark%s in %s (has %v)", c.line, name, pkg, have)
			}
		}
	}
	if n == 0 {
		t.Errorf("no go test -bench lines found in %s", perfDoc)
	}
}

// TestPerformanceDocAnchors checks that every link to a heading of
// docs/performance.md, from the page itself and from the other docs,
// finds the heading (GitHub's anchors: lower case, spaces to hyphens,
// punctuation dropped).
func TestPerformanceDocAnchors(t *testing.T) {
	b, err := os.ReadFile(perfDoc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(l, "#"); ok {
			anchors[slug(strings.TrimLeft(h, "# "))] = true
		}
	}
	check := func(file, text string, link *regexp.Regexp) {
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			if !anchors[m[1]] {
				t.Errorf("%s links to performance.md#%s, which is no heading there", file, m[1])
			}
		}
	}
	check(perfDoc, string(b), regexp.MustCompile(`\]\(#([^)]+)\)`))
	others, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	others = append(others, filepath.Join("..", "..", "README.md"))
	for _, f := range others {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(f, string(src), regexp.MustCompile(`performance\.md#([^)\s]+)\)`))
	}
}

// slug is the anchor GitHub gives a heading.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

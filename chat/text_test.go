package chat

import (
	"strings"
	"testing"
)

func TestJSONTextProblem(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"text":"hello"}`, ""},
		{`{"text":"caf\u00e9 \ud83d\ude00 \\ud800 \" \\"}`, ""},
		{"{\"text\":\"\xff\"}", "not valid UTF-8"},
		{"{\"text\":\"\xed\xa0\x80\"}", "not valid UTF-8"}, // a surrogate encoded in UTF-8 bytes
		{`{"text":"\ud800"}`, "lone UTF-16 surrogate escape (\\ud800)"},
		{`{"text":"\udc00\ud800"}`, "lone UTF-16 surrogate escape (\\udc00)"},
		{`{"text":"\ud800\u0041"}`, "lone UTF-16 surrogate"},
		{`{"text":"\ud800\ud800"}`, "lone UTF-16 surrogate"},
		{`["\uD83D"]`, "lone UTF-16 surrogate"},
		{`"\ud83d\ude00\ud83d"`, "lone UTF-16 surrogate"},
		{`"\u12"`, "bad \\u escape"},
		{`"\`, ""}, // not JSON: no panic
	} {
		got := jsonTextProblem([]byte(c.in))
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for v, ok := range map[string]bool{
		"https://cdn.example/a.png": true, "http://x/y?z=1#f": true, "HTTPS://X/": true,
		"javascript:alert(1)": false, " javascript:alert(1)": false, "java\tscript:alert(1)": false,
		"data:image/png;base64,AAAA": false, "vbscript:x": false, "file:///etc/passwd": false,
		"/relative.png": false, "//evil.example/x": false, "https:evil.example": false, "": false,
		"ftp://x/y": false, "https:///path": false,
	} {
		if got := checkURL(v) == ""; got != ok {
			t.Errorf("checkURL(%q) accepted=%v, want %v (%s)", v, got, ok, checkURL(v))
		}
	}
}

// BenchmarkJSONTextProblem is the cost the text check adds to every send
// (the content of BenchmarkValidateContent).
func BenchmarkJSONTextProblem(b *testing.B) {
	content := []byte(`{"text":"hello there, how are you today?"}`)
	b.ReportAllocs()
	for b.Loop() {
		if jsonTextProblem(content) != "" {
			b.Fatal("rejected")
		}
	}
}

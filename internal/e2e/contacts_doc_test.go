package e2e_test

import (
	"context"
	"os/exec"
	"reflect"
	"testing"
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
	s := start(t, t.TempDir(), options{})
	a, err := s.Admin.CreateApp(context.Background(), "myshop", "My shop")
	if err != nil {
		t.Fatal(err)
	}
	shellWalkthrough(t, "contacts.md", t.TempDir(), "SECRET="+a.Secret, "CHATD_URL=http://"+s.HTTPAddr)
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

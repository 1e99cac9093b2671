package interop_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"chatd/chat"
)

// The SDK's Action type names every action the server has, and no other:
// an action added to the core without the SDK knowing it fails here.
func TestSDKActionsMatchServer(t *testing.T) {
	src, err := os.ReadFile("../../sdk/js/src/types.ts")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	i := strings.Index(s, "export type Action =")
	if i < 0 {
		t.Fatal("sdk/js/src/types.ts has no `export type Action =`")
	}
	block := s[i : i+strings.Index(s[i:], ";")]
	var sdk []string
	for _, m := range regexp.MustCompile(`'([a-z_]+)'`).FindAllStringSubmatch(block, -1) {
		sdk = append(sdk, m[1])
	}
	server := slices.Clone(chat.Actions)
	slices.Sort(sdk)
	slices.Sort(server)
	for _, a := range server {
		if !slices.Contains(sdk, a) {
			t.Errorf("the server's action %q is missing from the SDK's Action type", a)
		}
	}
	for _, a := range sdk {
		if !slices.Contains(server, a) {
			t.Errorf("the SDK's Action type names %q, which the server does not have", a)
		}
	}
}

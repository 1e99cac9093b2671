package chat

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestAppendLoginOKMatchesJSON checks the hand-written login reply
// against what encoding/json makes of the same data (appendOK), so the
// two can never drift apart.
func TestAppendLoginOKMatchesJSON(t *testing.T) {
	tests := []struct {
		name string
		id   string
		d    loginData
	}{
		{name: "plain", id: `"1"`, d: loginData{UID: "u1", Nickname: "Alice", Avatar: "https://x/a.png", ServerTime: 1766000000123, ExpiresAt: 1768592000000}},
		{name: "no avatar, numeric id", id: `42`, d: loginData{UID: "u2", Nickname: "Bob", ServerTime: 1, ExpiresAt: 2}},
		{name: "escapes and unicode", id: `"a\"b"`, d: loginData{UID: "ü\"\\<>&\u2028", Nickname: "李\n\t\x01", Avatar: "</script>", ServerTime: -5, ExpiresAt: 0}},
		{name: "empty strings", id: `"x"`, d: loginData{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendLoginOK(nil, []byte(tc.id), &tc.d)
			want := appendOK(nil, []byte(tc.id), tc.d)
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("not JSON: %s (%v)", got, err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(g)
			wb, _ := json.Marshal(w)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("login reply\n got %s\nwant %s", got, want)
			}
			// docs/protocol.md: avatar is omitted when the user has none.
			if hasAvatar := bytes.Contains(got, []byte(`"avatar":`)); hasAvatar != (tc.d.Avatar != "") {
				t.Fatalf("login reply %s: avatar present = %v with avatar %q", got, hasAvatar, tc.d.Avatar)
			}
		})
	}
}

package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestModerationCommands drives the moderation and caps commands against
// a real chatd: each command's effect shows in the list (JSON and human
// output), and bad flags are usage errors.
func TestModerationCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startServer(t, dir)
	base := map[string]string{"CHATD_DATA_DIR": dir}
	var app struct{ ID, Secret string }
	mustJSON(t, base, &app, "app", "create", "--id", "shop", "--name", "Shop")
	creds := map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": app.ID, "CHATD_SECRET": app.Secret}
	for _, uid := range []string{"alice", "bob"} {
		if _, _, err := ctl(t, creds, "user", "push", "--uid", uid); err != nil {
			t.Fatal(err)
		}
	}

	before := time.Now()
	var ban struct {
		UID    string `json:"uid"`
		Until  int64  `json:"until"`
		Kicked int    `json:"kicked"`
	}
	mustJSON(t, creds, &ban, "user", "ban", "--uid", "bob", "--for", "2h", "--reason", "spam")
	if ban.UID != "bob" || ban.Until < before.Add(2*time.Hour).UnixMilli() || ban.Until > time.Now().Add(2*time.Hour).UnixMilli() {
		t.Fatalf("ban = %+v", ban)
	}
	out, _, err := ctl(t, creds, "user", "mute", "--uid", "alice", "--until", "2099-01-02T03:04:05Z")
	if err != nil || out != "alice muted until 2099-01-02T03:04:05Z\n" {
		t.Fatalf("mute: %v %q", err, out)
	}
	out, _, err = ctl(t, creds, "moderation")
	if err != nil {
		t.Fatal(err)
	}
	untilBan := time.UnixMilli(ban.Until).UTC().Format(time.RFC3339)
	for _, want := range []string{"banned: 1\n", "bob", "until " + untilBan, "(spam)", "muted: 1\n", "alice", "until 2099-01-02T03:04:05Z"} {
		if !strings.Contains(out, want) {
			t.Fatalf("moderation list lacks %q:\n%s", want, out)
		}
	}
	if out, _, err = ctl(t, creds, "user", "unmute", "--uid", "alice"); err != nil || out != "alice: unmute done\n" {
		t.Fatalf("unmute: %v %q", err, out)
	}
	if out, _, err = ctl(t, creds, "user", "unban", "--uid", "bob"); err != nil {
		t.Fatalf("unban: %v %q", err, out)
	}
	if out, _, err = ctl(t, creds, "user", "kick", "--uid", "alice"); err != nil || out != "alice kicked; 0 connection(s) closed\n" {
		t.Fatalf("kick: %v %q", err, out)
	}
	var list struct {
		Banned []struct{ UID string } `json:"banned"`
		Muted  []struct{ UID string } `json:"muted"`
	}
	mustJSON(t, creds, &list, "moderation")
	if len(list.Banned) != 0 || len(list.Muted) != 0 {
		t.Fatalf("list after lifting = %+v", list)
	}
	if _, _, err = ctl(t, creds, "user", "unban", "--uid", "bob"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("unban of a user not banned: %v", err)
	}

	if out, _, err = ctl(t, creds, "app", "limits", "--max-users", "2"); err != nil || out != "users  2 of 2\ngroups 0 of no cap\n" {
		t.Fatalf("app limits --max-users: %v %q", err, out)
	}
	if _, _, err = ctl(t, creds, "user", "push", "--uid", "carol"); err == nil || !strings.Contains(err.Error(), "app_users limit") {
		t.Fatalf("push over the cap: %v", err)
	}
	var lim struct {
		MaxUsers int `json:"max_users"`
		Users    int `json:"users"`
	}
	mustJSON(t, creds, &lim, "app", "limits")
	if lim.MaxUsers != 2 || lim.Users != 2 {
		t.Fatalf("app limits = %+v", lim)
	}

	for _, args := range [][]string{
		{"user", "ban"},
		{"user", "ban", "--uid", "bob", "--for", "1h", "--until", "2099-01-01T00:00:00Z"},
		{"user", "mute", "--uid", "bob", "--until", "tomorrow"},
		{"user", "kick"},
	} {
		var ue usageError
		if _, _, err := ctl(t, creds, args...); err == nil || !errors.As(err, &ue) {
			t.Fatalf("chatctl %q: %v, want a usage error", args, err)
		}
	}
}

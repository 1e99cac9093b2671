package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// The webhook commands against a real chatd: add, list, set, hook,
// deliveries, rm, and their usage errors.
func TestWebhookCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startServer(t, dir)
	base := map[string]string{"CHATD_DATA_DIR": dir}
	var app struct{ ID, Secret string }
	mustJSON(t, base, &app, "app", "create", "--id", "shop", "--name", "Shop")
	creds := map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": app.ID, "CHATD_SECRET": app.Secret}

	var ep struct {
		ID, URL, Secret string
		Events          []string
		Enabled         bool
	}
	mustJSON(t, creds, &ep, "webhook", "add", "--url", "https://hooks.example.com/chat", "--events", "message.created, push.offline")
	if ep.ID == "" || !ep.Enabled || len(ep.Events) != 2 || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("webhook add = %+v", ep)
	}
	out, _, err := ctl(t, creds, "webhook", "list")
	if err != nil || !strings.Contains(out, ep.ID) || !strings.Contains(out, "enabled") || !strings.Contains(out, "message.created,push.offline") {
		t.Fatalf("webhook list: %v\n%s", err, out)
	}
	if out, _, err := ctl(t, creds, "webhook", "set", "--id", ep.ID, "--disable"); err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("webhook set --disable: %v\n%s", err, out)
	}
	if out, _, err := ctl(t, creds, "webhook", "deliveries"); err != nil || !strings.Contains(out, "no deliveries") {
		t.Fatalf("webhook deliveries: %v\n%s", err, out)
	}
	if _, _, err := ctl(t, creds, "webhook", "hook"); err == nil || !strings.Contains(err.Error(), "no before-send hook") {
		t.Fatalf("webhook hook with none set: %v", err)
	}
	if out, _, err := ctl(t, creds, "webhook", "hook", "--url", "https://filter.example.com/", "--wait", "150ms", "--on-timeout", "reject"); err != nil ||
		!strings.Contains(out, "timeout=150ms") || !strings.Contains(out, "on_timeout=reject") {
		t.Fatalf("webhook hook set: %v\n%s", err, out)
	}
	// A loopback URL is refused: chatd runs without webhook_loopback.
	if _, _, err := ctl(t, creds, "webhook", "add", "--url", "http://127.0.0.1:9/x", "--events", "*"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("webhook add of a loopback URL: %v", err)
	}
	for _, args := range [][]string{
		{"webhook", "add", "--url", "https://x.example.com/"},
		{"webhook", "set"},
		{"webhook", "rm"},
		{"webhook", "redeliver"},
		{"webhook", "hook", "--enable", "--disable"},
	} {
		if _, _, err := ctl(t, creds, args...); err == nil {
			t.Errorf("chatctl %q: no usage error", args)
		} else if _, ok := err.(usageError); !ok {
			t.Errorf("chatctl %q: %v is not a usage error", args, err)
		}
	}
	if out, _, err := ctl(t, creds, "webhook", "rm", "--id", ep.ID); err != nil || !strings.Contains(out, "deleted "+ep.ID) {
		t.Fatalf("webhook rm: %v\n%s", err, out)
	}
	if out, _, _ := ctl(t, creds, "webhook", "list"); !strings.Contains(out, "no webhook endpoints") {
		t.Fatalf("after rm:\n%s", out)
	}
}

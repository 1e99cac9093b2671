package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// chatctl service creates a shop and assigns an agent over the signed
// host API, and a bad action comes back as the server's specific error.
func TestServiceCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startServer(t, dir)
	base := map[string]string{"CHATD_DATA_DIR": dir}
	var app struct{ ID, Secret string }
	mustJSON(t, base, &app, "app", "create", "--name", "Mall", "--id", "mall")
	creds := map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": app.ID, "CHATD_SECRET": app.Secret}
	if _, _, err := ctl(t, creds, "user", "push", "--uid", "ann"); err != nil {
		t.Fatal(err)
	}
	var shop struct {
		ID       string
		Settings struct{ Strategy string }
	}
	svcJSON(t, creds, &shop, `{"action":"shop_put","shop":"s1","settings":{"strategy":"round_robin"}}`)
	if shop.ID != "s1" || shop.Settings.Strategy != "round_robin" {
		t.Fatalf("shop %+v", shop)
	}
	var agent struct {
		UID      string
		Capacity int
	}
	svcJSON(t, creds, &agent, `{"action":"agent_put","shop":"s1","uid":"ann","capacity":3}`)
	if agent.UID != "ann" || agent.Capacity != 3 {
		t.Fatalf("agent %+v", agent)
	}
	_, _, err := ctl(t, creds, "service", `{"action":"agents","shop":"nope"}`)
	if err == nil || !strings.Contains(err.Error(), "unknown shop") {
		t.Fatalf("unknown shop: %v", err)
	}
	if _, _, err := ctl(t, creds, "service", `not json`); err == nil {
		t.Fatal("invalid JSON accepted")
	}
}

// svcJSON runs chatctl service --json body and decodes its output.
func svcJSON(t *testing.T, env map[string]string, v any, body string) {
	t.Helper()
	out, _, err := ctl(t, env, "service", "--json", body)
	if err != nil {
		t.Fatalf("chatctl service %s: %v", body, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
}

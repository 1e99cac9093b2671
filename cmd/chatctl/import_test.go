//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"chatd/httpapi/apiclient"
)

// export is a generated export of another chat system and what chatd must
// hold after importing it.
type export struct {
	lines    []string
	users    []string
	friends  map[string][]string // uid → friends, sorted
	groups   map[string][]string // group id → members (owner first)
	admins   map[string]string   // group id → its admin
	messages []genMsg            // in file order (shuffled)
}

type genMsg struct {
	id, from, to, group string
	at                  int64
}

// genExport makes users, friendships, groups and messages. Messages go to
// private pairs, groups and system sessions, with times over the past year,
// shuffled so that the importer must sort them.
func genExport(nUsers, nFriends, nGroups, nMsgs int) *export {
	r := rand.New(rand.NewSource(22))
	x := &export{friends: map[string][]string{}, groups: map[string][]string{}, admins: map[string]string{}}
	add := func(v any) {
		b, _ := json.Marshal(v)
		x.lines = append(x.lines, string(b))
	}
	for i := 0; i < nUsers; i++ {
		uid := fmt.Sprintf("u%04d", i)
		x.users = append(x.users, uid)
		add(map[string]any{"kind": "user", "id": uid, "nickname": "User " + uid})
	}
	seen := map[[2]string]bool{}
	for len(seen) < nFriends {
		a, b := x.users[r.Intn(nUsers)], x.users[r.Intn(nUsers)]
		if a == b || seen[[2]string{a, b}] || seen[[2]string{b, a}] {
			continue
		}
		seen[[2]string{a, b}] = true
		x.friends[a] = append(x.friends[a], b)
		x.friends[b] = append(x.friends[b], a)
		add(map[string]any{"kind": "friend", "uid": a, "peer": b})
	}
	var gids []string
	for i := 0; i < nGroups; i++ {
		gid := fmt.Sprintf("g%03d", i)
		gids = append(gids, gid)
		owner := x.users[r.Intn(nUsers)]
		in := map[string]bool{owner: true}
		mem := []string{owner}
		var ms []map[string]string
		for len(mem) < 3+r.Intn(8) {
			u := x.users[r.Intn(nUsers)]
			if in[u] {
				continue
			}
			in[u] = true
			mem = append(mem, u)
			role := "member"
			if len(mem) == 2 {
				role = "admin"
				x.admins[gid] = u
			}
			ms = append(ms, map[string]string{"uid": u, "role": role})
		}
		x.groups[gid] = mem
		add(map[string]any{"kind": "group", "id": gid, "name": "Group " + gid, "owner": owner, "members": ms})
	}
	var pairs [][2]string
	for p := range seen {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0]+pairs[i][1] < pairs[j][0]+pairs[j][1] })
	pairs = pairs[:min(len(pairs), 600)]
	base := time.Now().Add(-365 * 24 * time.Hour).UnixMilli()
	for i := 0; i < nMsgs; i++ {
		m := genMsg{id: fmt.Sprintf("m%d", i), at: base + r.Int63n(360*24*3600*1000)}
		switch k := r.Intn(20); {
		case k < 9:
			p := pairs[r.Intn(len(pairs))]
			if r.Intn(2) == 0 {
				p[0], p[1] = p[1], p[0]
			}
			m.from, m.to = p[0], p[1]
		case k < 10:
			m.to = x.users[r.Intn(min(100, nUsers))] // a system notice
		default:
			m.group = gids[r.Intn(len(gids))]
			mem := x.groups[m.group]
			m.from = mem[r.Intn(len(mem))]
		}
		x.messages = append(x.messages, m)
	}
	for _, m := range x.messages {
		rec := map[string]any{"kind": "message", "id": m.id, "from": m.from, "type": "text",
			"content": map[string]string{"text": "text of " + m.id}, "created_at": m.at}
		if m.group != "" {
			rec["group"] = m.group
		} else {
			rec["to"] = m.to
		}
		add(rec)
	}
	for u := range x.friends {
		sort.Strings(x.friends[u])
	}
	return x
}

func (x *export) write(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(x.lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runImportCmd runs `chatctl import` in-process with a deadline fit for a
// big file.
func runImportCmd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	err := run(ctx, append([]string{"import"}, args...), &out, &errb, lookup)
	return out.String(), errb.String(), err
}

type importEnv struct {
	env map[string]string
	c   *apiclient.Client
}

func newImportApp(t *testing.T, dir string, s *server, id string) importEnv {
	t.Helper()
	var app struct{ ID, Secret string }
	mustJSON(t, map[string]string{"CHATD_DATA_DIR": dir}, &app, "app", "create", "--name", id, "--id", id)
	return importEnv{
		env: map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": app.ID, "CHATD_SECRET": app.Secret},
		c:   &apiclient.Client{BaseURL: "http://" + s.ri.HTTPAddr, App: app.ID, Secret: app.Secret},
	}
}

func countUsers(t *testing.T, c *apiclient.Client) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var out struct {
			Users []json.RawMessage `json:"users"`
			Next  string            `json:"next_cursor"`
		}
		if err := c.Do(context.Background(), http.MethodGet, "/api/v1/users?"+q.Encode(), nil, &out); err != nil {
			t.Fatal(err)
		}
		n += len(out.Users)
		if out.Next == "" || len(out.Users) == 0 {
			return n
		}
		cursor = out.Next
	}
}

// verify checks that chatd holds the export: every user; the friends of a
// sample of users; every session's messages with their senders, original
// times and text, in time order with dense seqs; and every user's unread
// count (a sender has read up to their own last message).
func verify(t *testing.T, ie importEnv, x *export, statePath string) {
	t.Helper()
	ctx := context.Background()
	if n := countUsers(t, ie.c); n != len(x.users) {
		t.Fatalf("chatd has %d users, want %d", n, len(x.users))
	}
	for _, uid := range x.users[:25] {
		tok, err := ie.c.IssueToken(ctx, uid, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ie.c.ClientDo(ctx, tok.Token, map[string]any{"id": 1, "action": "friends", "limit": 1000})
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Data struct {
				Friends []struct{ UID string } `json:"friends"`
			} `json:"data"`
		}
		json.Unmarshal(raw, &rep)
		var got []string
		for _, f := range rep.Data.Friends {
			got = append(got, f.UID)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(x.friends[uid], ",") {
			t.Fatalf("friends of %s: %v, want %v", uid, got, x.friends[uid])
		}
	}
	var st struct {
		Groups   map[string]uint64 `json:"groups"`
		Sessions map[string]uint64 `json:"sessions"`
	}
	b, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Groups) != len(x.groups) {
		t.Fatalf("state maps %d groups, want %d", len(st.Groups), len(x.groups))
	}
	for gid, mem := range x.groups {
		roles := groupRoles(t, ie.c, st.Groups[gid])
		if len(roles) != len(mem) || roles[mem[0]] != 3 || roles[x.admins[gid]] != 2 {
			t.Fatalf("group %s: chatd has %v, want members %v, owner %s, admin %s", gid, roles, mem, mem[0], x.admins[gid])
		}
	}
	// The expected sessions, oldest message first (ties in file order).
	want := map[string][]genMsg{}
	members := map[string][]string{}
	for _, m := range x.messages {
		var k string
		switch {
		case m.group != "":
			k = "g\x00" + m.group
			members[k] = x.groups[m.group]
		case m.from == "":
			k = "s\x00" + m.to
			members[k] = []string{m.to}
		default:
			a, b := m.from, m.to
			if b < a {
				a, b = b, a
			}
			k = "p\x00" + a + "\x00" + b
			members[k] = []string{a, b}
		}
		want[k] = append(want[k], m)
	}
	unread := map[string]int{}
	total := 0
	for k, msgs := range want {
		sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].at < msgs[j].at })
		var id uint64
		if strings.HasPrefix(k, "g\x00") {
			id = st.Groups[k[2:]]
		} else {
			id = st.Sessions[k]
		}
		if id == 0 {
			t.Fatalf("no chatd session for %q in the state file", k)
		}
		var got []apiclient.Message
		var before uint64
		for {
			page, err := ie.c.History(ctx, id, before, 500)
			if err != nil {
				t.Fatal(err)
			}
			got = append(page, got...)
			if len(page) == 0 || page[0].Seq == 1 {
				break
			}
			before = page[0].Seq
		}
		if len(got) != len(msgs) {
			t.Fatalf("session %d (%q) holds %d messages, want %d", id, k, len(got), len(msgs))
		}
		lastOwn := map[string]int{}
		for i, m := range got {
			w := msgs[i]
			if m.Seq != uint64(i+1) || m.From != w.from || m.CreatedAt != w.at ||
				!strings.Contains(string(m.Content), "text of "+w.id+`"`) || m.CID != importCID(w.id) {
				t.Fatalf("session %d message %d: %+v (content %s), want %+v", id, i+1, m, m.Content, w)
			}
			if m.From != "" {
				lastOwn[m.From] = i + 1
			}
		}
		for _, u := range members[k] {
			unread[u] += len(got) - lastOwn[u]
		}
		total += len(got)
	}
	if total != len(x.messages) {
		t.Fatalf("%d messages in chatd, want %d", total, len(x.messages))
	}
	for _, uid := range x.users {
		var out struct {
			Unread int `json:"unread"`
		}
		if err := ie.c.Do(ctx, http.MethodGet, "/api/v1/users/"+uid+"/unread", nil, &out); err != nil {
			t.Fatal(err)
		}
		if out.Unread != unread[uid] {
			t.Fatalf("unread of %s: %d, want %d", uid, out.Unread, unread[uid])
		}
	}
}

// TestImport imports a generated export of 1,000 users, 5,000 friendships,
// 200 groups and 20,000 messages (200,000 with CHATD_IMPORT_FULL=1), checks
// that everything is there as the export said, and that a second run
// changes nothing.
func TestImport(t *testing.T) {
	nMsgs := 20000
	if os.Getenv("CHATD_IMPORT_FULL") != "" {
		nMsgs = 200000
	}
	x := genExport(1000, 5000, 200, nMsgs)
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir)
	ie := newImportApp(t, dir, s, "legacy")
	file := filepath.Join(t.TempDir(), "export.jsonl")
	x.write(t, file)

	out, errOut, err := runImportCmd(t, ie.env, file, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	for _, w := range []string{"users: 1000 would be new", "groups: 200 would be created", fmt.Sprintf("messages: %d would be sent", nMsgs)} {
		if !strings.Contains(out, w) {
			t.Fatalf("dry run output lacks %q:\n%s", w, out)
		}
	}
	if n := countUsers(t, ie.c); n != 0 {
		t.Fatalf("the dry run pushed %d users", n)
	}

	start := time.Now()
	out, errOut, err = runImportCmd(t, ie.env, file, "--progress", "1s")
	if err != nil {
		t.Fatalf("import: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("imported %d messages in %v", nMsgs, time.Since(start))
	for _, w := range []string{"users: 1000 new", "groups: 200 created", "friendships: 5000 added",
		fmt.Sprintf("messages: %d sent, 0 already imported", nMsgs), "0 members added to imported groups, 200 admins set"} {
		if !strings.Contains(out, w) {
			t.Fatalf("import output lacks %q:\n%s", w, out)
		}
	}
	state := file + ".chatd-import.json"
	verify(t, ie, x, state)

	out, errOut, err = runImportCmd(t, ie.env, file)
	if err != nil {
		t.Fatalf("second import: %v\n%s", err, errOut)
	}
	for _, w := range []string{"users: 0 new, 0 updated, 1000 unchanged", "groups: 0 created, 200 already imported; 0 members added to imported groups, 0 admins set",
		"friendships: 0 added, 5000 already friends", fmt.Sprintf("messages: 0 sent, %d already imported", nMsgs)} {
		if !strings.Contains(out, w) {
			t.Fatalf("second import output lacks %q:\n%s", w, out)
		}
	}
	verify(t, ie, x, state)

	// A member the source added to a group since (an admin) is added to
	// the imported group, and nothing else changes.
	var st struct {
		Groups map[string]uint64 `json:"groups"`
	}
	b, _ := os.ReadFile(state)
	json.Unmarshal(b, &st)
	newcomer := ""
	for _, u := range x.users {
		if !slices.Contains(x.groups["g000"], u) {
			newcomer = u
			break
		}
	}
	for i, l := range x.lines {
		if strings.HasPrefix(l, `{"id":"g000",`) || strings.Contains(l, `"id":"g000"`) && strings.Contains(l, `"kind":"group"`) {
			x.lines[i] = strings.Replace(l, `"members":[`, `"members":[{"role":"admin","uid":"`+newcomer+`"},`, 1)
		}
	}
	x.write(t, file)
	out, errOut, err = runImportCmd(t, ie.env, file)
	if err != nil || !strings.Contains(out, "groups: 0 created, 200 already imported; 1 members added to imported groups, 1 admins set") ||
		!strings.Contains(out, "messages: 0 sent") {
		t.Fatalf("import with a new group member: %v\n%s\n%s", err, out, errOut)
	}
	roles := groupRoles(t, ie.c, st.Groups["g000"])
	if roles[newcomer] != 2 || len(roles) != len(x.groups["g000"])+1 {
		t.Fatalf("group g000 after the newcomer: %v", roles)
	}
}

// groupRoles reads a group's members and their role numbers (1 member,
// 2 admin, 3 owner).
func groupRoles(t *testing.T, c *apiclient.Client, id uint64) map[string]int {
	t.Helper()
	var page struct {
		Members []struct {
			UID  string `json:"uid"`
			Role int    `json:"role"`
		} `json:"members"`
	}
	if err := c.Do(context.Background(), http.MethodGet, fmt.Sprintf("/api/v1/groups/%d/members?limit=1000", id), nil, &page); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range page.Members {
		out[m.UID] = m.Role
	}
	return out
}

// A malformed line is reported with its line number and nothing is
// imported; records naming a bad one are reported too; --skip-bad imports
// the rest.
func TestImportBadLines(t *testing.T) {
	x := genExport(20, 30, 3, 200)
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir)
	ie := newImportApp(t, dir, s, "legacy")
	file := filepath.Join(t.TempDir(), "export.jsonl")
	lines := append([]string(nil), x.lines...)
	lines[4] = `{"kind":"user","id":"u0004","nickname":`                                                                                             // truncated: line 5
	lines[7] = `{"kind":"user","id":"u0007","avatar":"javascript:alert(1)"}`                                                                         // line 8
	lines[30] = `{"kind":"frend","uid":"u0001","peer":"u0002"}`                                                                                      // line 31
	lines = append(lines, `{"kind":"message","id":"late","from":"u0001","to":"u0002","type":"text","content":{"text":"x"},"created_at":1566212436}`) // seconds
	x.lines = lines
	x.write(t, file)
	n := len(lines)

	out, errOut, err := runImportCmd(t, ie.env, file)
	if err == nil || !strings.Contains(err.Error(), "nothing imported") || !strings.Contains(err.Error(), "first on line 5") {
		t.Fatalf("import of a bad file: %v\n%s", err, out)
	}
	for _, w := range []string{file + ":5: not a JSON object", file + `:31: unknown kind "frend"`,
		file + `:8: user "u0007": avatar must be an http(s) URL`,
		fmt.Sprintf("%s:%d: message %q: created_at 1566212436 looks like seconds", file, n, "late")} {
		if !strings.Contains(errOut, w) {
			t.Fatalf("report lacks %q:\n%s", w, errOut)
		}
	}
	// Records naming the broken user are reported as well.
	if !strings.Contains(errOut, `"u0004" is not a user record of this file`) && !strings.Contains(errOut, `"u0004" and`) &&
		!strings.Contains(errOut, `"u0004" must both be`) {
		t.Logf("(no record names u0004 in this export)")
	}
	if got := countUsers(t, ie.c); got != 0 {
		t.Fatalf("a bad file imported %d users", got)
	}

	out, errOut, err = runImportCmd(t, ie.env, file, "--skip-bad")
	if err != nil {
		t.Fatalf("--skip-bad: %v\n%s\n%s", err, out, errOut)
	}
	if got := countUsers(t, ie.c); got != 18 {
		t.Fatalf("--skip-bad imported %d users, want the 18 good ones", got)
	}
	if !strings.Contains(out, "users: 18 new") || !strings.Contains(errOut, file+":5:") {
		t.Fatalf("--skip-bad output:\n%s\n%s", out, errOut)
	}
	// Once the file is clean, the rest comes in and nothing twice.
	x.lines[4] = `{"kind":"user","id":"u0004","nickname":"User u0004"}`
	x.lines[7] = `{"kind":"user","id":"u0007","nickname":"User u0007"}`
	x.lines[30] = `{"kind":"friend","uid":"u0001","peer":"u0003"}`
	x.lines = x.lines[:n-1]
	x.write(t, file)
	out, errOut, err = runImportCmd(t, ie.env, file)
	if err != nil {
		t.Fatalf("clean import: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "users: 2 new, 0 updated, 18 unchanged") || !strings.Contains(out, "messages: ") {
		t.Fatalf("clean import output:\n%s", out)
	}
	if got := countUsers(t, ie.c); got != 20 {
		t.Fatalf("%d users after the clean import, want 20", got)
	}
}

package main

// chatctl import FILE: users, friendships, groups and message history from
// a JSON Lines export of another chat system (docs/migrating.md), through
// the signed server API like any host call, so every rule of the store
// applies. The whole file is validated before anything is sent; running it
// again imports nothing twice.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"chatd/httpapi/apiclient"
)

func init() {
	register(&command{
		name: "import", args: "FILE [--dry-run] [--skip-bad] [--state PATH] [--workers N]",
		summary:    "import users, friendships, groups and messages from a JSON Lines file (docs/migrating.md)",
		positional: true,
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			o := importOpts{}
			fs.BoolVar(&o.dryRun, "dry-run", false, "validate and print what would be imported; change nothing")
			fs.BoolVar(&o.skipBad, "skip-bad", false, "report bad records (and those that name them) and import the rest")
			fs.StringVar(&o.state, "state", "", "the state file mapping source groups and pairs to chatd sessions (default FILE.chatd-import.json)")
			fs.IntVar(&o.workers, "workers", 8, "sessions imported at once (1-64)")
			fs.DurationVar(&o.progress, "progress", 2*time.Second, "how often to print progress to stderr (0: never)")
			return func(ctx context.Context, e *env) error {
				// Flags may follow FILE too: `chatctl import x.jsonl --dry-run`.
				var pos []string
				for args := e.args; len(args) > 0; {
					if len(args[0]) > 1 && args[0][0] == '-' {
						if err := fs.Parse(args); err != nil {
							return usagef("import: %v (run `chatctl import --help`)", err)
						}
						args = fs.Args()
						continue
					}
					pos, args = append(pos, args[0]), args[1:]
				}
				if len(pos) != 1 {
					return usagef("import: give exactly one FILE")
				}
				e.args = pos
				if o.workers < 1 || o.workers > 64 {
					return usagef("import: --workers must be 1-64")
				}
				o.file = e.args[0]
				if o.state == "" {
					o.state = o.file + ".chatd-import.json"
				}
				return runImport(ctx, e, o)
			}
		},
	})
}

type importOpts struct {
	file, state     string
	dryRun, skipBad bool
	workers         int
	progress        time.Duration
}

// The records of an import file, one JSON object a line, told apart by
// "kind". Unknown fields are errors, so a typo is caught by validation.
type impUser struct {
	Kind     string          `json:"kind"`
	ID       string          `json:"id"`
	Nickname string          `json:"nickname,omitempty"`
	Avatar   string          `json:"avatar,omitempty"`
	Extra    json.RawMessage `json:"extra,omitempty"`
}

type impFriend struct {
	Kind   string `json:"kind"`
	UID    string `json:"uid"`
	Peer   string `json:"peer"`
	Remark string `json:"remark,omitempty"`
}

type impMember struct {
	UID  string `json:"uid"`
	Role string `json:"role,omitempty"` // member (default), admin
}

type impGroup struct {
	Kind    string      `json:"kind"`
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	Avatar  string      `json:"avatar,omitempty"`
	Owner   string      `json:"owner"`
	Members []impMember `json:"members"`
}

type impMessage struct {
	Kind      string          `json:"kind"`
	ID        string          `json:"id"`
	From      string          `json:"from"`
	To        string          `json:"to,omitempty"`
	Group     string          `json:"group,omitempty"`
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
	CreatedAt int64           `json:"created_at"`

	line int
	cid  string
}

// lineErr is a bad record.
type lineErr struct {
	line int
	msg  string
}

// importFile is a parsed, validated file.
type importFile struct {
	users    []impUser
	userLine []int
	groups   []impGroup
	friends  []impFriend
	messages []*impMessage
	bad      []lineErr
}

// importCID is a message's client id in chatd: derived from its source id
// only, so a second run sends the same cid and finds it in the history.
func importCID(id string) string {
	h := sha256.Sum256([]byte(id))
	return "imp:" + hex.EncodeToString(h[:20])
}

const maxImportLine = 1 << 20

// parseImport reads and validates every line; now (unix ms) bounds
// created_at. Records that name a bad or missing record are bad too.
func parseImport(r io.Reader, now int64) (*importFile, error) {
	f := &importFile{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxImportLine)
	bad := func(line int, format string, a ...any) {
		f.bad = append(f.bad, lineErr{line, fmt.Sprintf(format, a...)})
	}
	type groupAt struct {
		g    impGroup
		line int
	}
	type friendAt struct {
		f    impFriend
		line int
	}
	var groups []groupAt
	var friends []friendAt
	users := map[string]bool{}
	msgIDs := map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var k struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(raw, &k); err != nil {
			bad(line, "not a JSON object: %v", err)
			continue
		}
		strict := func(v any) bool {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(v); err != nil {
				bad(line, "%s: %v", k.Kind, err)
				return false
			}
			return true
		}
		switch k.Kind {
		case "user":
			var u impUser
			if !strict(&u) {
				continue
			}
			switch {
			case u.ID == "" || len(u.ID) > 64:
				bad(line, "user: id must be 1-64 bytes")
			case users[u.ID]:
				bad(line, "user: %q appears twice", u.ID)
			case u.Avatar != "" && !strings.HasPrefix(u.Avatar, "https://") && !strings.HasPrefix(u.Avatar, "http://") && !strings.HasPrefix(u.Avatar, "chatd-file:"):
				bad(line, "user %q: avatar must be an http(s) URL (or chatd-file:<id>)", u.ID)
			default:
				users[u.ID] = true
				f.users = append(f.users, u)
				f.userLine = append(f.userLine, line)
			}
		case "friend":
			var fr impFriend
			if strict(&fr) {
				friends = append(friends, friendAt{fr, line})
			}
		case "group":
			var g impGroup
			if strict(&g) {
				groups = append(groups, groupAt{g, line})
			}
		case "message":
			m := &impMessage{line: line}
			if !strict(m) {
				continue
			}
			switch {
			case m.ID == "":
				bad(line, "message: missing id (the source system's message id)")
				continue
			case msgIDs[m.ID] != 0:
				bad(line, "message: id %q appears twice (first on line %d)", m.ID, msgIDs[m.ID])
				continue
			}
			msgIDs[m.ID] = line
			m.cid = importCID(m.ID)
			f.messages = append(f.messages, m)
		case "":
			bad(line, "missing \"kind\" (user, friend, group or message)")
		default:
			bad(line, "unknown kind %q (want user, friend, group or message)", k.Kind)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d is longer than %d bytes", line+1, maxImportLine)
		}
		return nil, err
	}
	members := map[string]map[string]bool{}
	for _, ga := range groups {
		g := ga.g
		switch {
		case g.ID == "":
			bad(ga.line, "group: missing id")
		case members[g.ID] != nil:
			bad(ga.line, "group: %q appears twice", g.ID)
		case g.Name == "":
			bad(ga.line, "group %q: missing name", g.ID)
		case !users[g.Owner]:
			bad(ga.line, "group %q: owner %q is not a user record of this file", g.ID, g.Owner)
		default:
			in := map[string]bool{g.Owner: true}
			ok := true
			for _, m := range g.Members {
				if !users[m.UID] {
					bad(ga.line, "group %q: member %q is not a user record of this file", g.ID, m.UID)
					ok = false
					break
				}
				if m.Role != "" && m.Role != "member" && m.Role != "admin" && m.Role != "owner" {
					bad(ga.line, "group %q: member %q has role %q (want member or admin)", g.ID, m.UID, m.Role)
					ok = false
					break
				}
				in[m.UID] = true
			}
			if ok {
				members[g.ID] = in
				f.groups = append(f.groups, g)
			}
		}
	}
	for _, fa := range friends {
		fr := fa.f
		switch {
		case fr.UID == "" || fr.Peer == "":
			bad(fa.line, "friend: needs uid and peer")
		case fr.UID == fr.Peer:
			bad(fa.line, "friend: %q cannot be their own friend", fr.UID)
		case !users[fr.UID] || !users[fr.Peer]:
			bad(fa.line, "friend: %q and %q must both be user records of this file", fr.UID, fr.Peer)
		case len(fr.Remark) > 64:
			bad(fa.line, "friend: remark over 64 bytes")
		default:
			f.friends = append(f.friends, fr)
		}
	}
	kept := f.messages[:0]
	for _, m := range f.messages {
		var msg string
		switch {
		case (m.To == "") == (m.Group == ""):
			msg = "needs exactly one of \"to\" (a user) and \"group\" (a group id)"
		case m.Type == "":
			msg = "missing type"
		case len(bytes.TrimSpace(m.Content)) == 0 || bytes.TrimSpace(m.Content)[0] != '{':
			msg = "content must be a JSON object, e.g. {\"text\":\"hi\"}"
		case m.CreatedAt <= 0:
			msg = "missing created_at (unix milliseconds)"
		case m.CreatedAt < 100_000_000_000:
			msg = fmt.Sprintf("created_at %d looks like seconds; give unix milliseconds", m.CreatedAt)
		case m.CreatedAt > now:
			msg = fmt.Sprintf("created_at %d is in the future", m.CreatedAt)
		case m.From != "" && !users[m.From]:
			msg = fmt.Sprintf("from %q is not a user record of this file", m.From)
		case m.To != "" && !users[m.To]:
			msg = fmt.Sprintf("to %q is not a user record of this file", m.To)
		case m.To != "" && m.To == m.From:
			msg = fmt.Sprintf("from and to are both %q", m.To)
		case m.Group != "" && members[m.Group] == nil:
			msg = fmt.Sprintf("group %q is not a (valid) group record of this file", m.Group)
		case m.Group != "" && m.From != "" && !members[m.Group][m.From]:
			msg = fmt.Sprintf("from %q is not a member of group %q", m.From, m.Group)
		}
		if msg != "" {
			bad(m.line, "message %q: %s", m.ID, msg)
			continue
		}
		kept = append(kept, m)
	}
	f.messages = kept
	sort.SliceStable(f.bad, func(i, j int) bool { return f.bad[i].line < f.bad[j].line })
	return f, nil
}

// importState maps what the source names to the chatd sessions the import
// created, so that a second run finds them: groups (chatd picks group
// session ids) and the private and system sessions messages went to.
type importState struct {
	App      string            `json:"app"`
	Groups   map[string]uint64 `json:"groups"`
	Sessions map[string]uint64 `json:"sessions"` // sessKey → session id
	mu       sync.Mutex
	path     string
}

func loadImportState(path, app string) (*importState, error) {
	st := &importState{App: app, Groups: map[string]uint64{}, Sessions: map[string]uint64{}, path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %v", path, err)
	}
	if st.App != app {
		return nil, fmt.Errorf("state file %s belongs to app %q, not %q: pass --state for this app's", path, st.App, app)
	}
	if st.Groups == nil {
		st.Groups = map[string]uint64{}
	}
	if st.Sessions == nil {
		st.Sessions = map[string]uint64{}
	}
	return st, nil
}

// save writes the state atomically (a temporary file renamed over it).
func (st *importState) save() error {
	st.mu.Lock()
	b, err := json.MarshalIndent(st, "", "  ")
	st.mu.Unlock()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(st.path), ".chatd-import-*")
	if err != nil {
		return err
	}
	if _, err = tmp.Write(append(b, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), st.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func (st *importState) get(m map[string]uint64, k string) (uint64, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	v, ok := m[k]
	return v, ok
}

func (st *importState) set(m map[string]uint64, k string, v uint64) {
	st.mu.Lock()
	m[k] = v
	st.mu.Unlock()
}

// impSession is one chatd session's messages, oldest first.
type impSession struct {
	key      string // "p\x00a\x00b" (a < b), "s\x00uid", "g\x00group id"
	kind     string // private, system, group
	a, b     string // private: the pair; system: a is the user
	group    string
	messages []*impMessage
}

func sessionsOf(msgs []*impMessage) []*impSession {
	by := map[string]*impSession{}
	var out []*impSession
	for _, m := range msgs {
		var s impSession
		switch {
		case m.Group != "":
			s = impSession{key: "g\x00" + m.Group, kind: "group", group: m.Group}
		case m.From == "":
			s = impSession{key: "s\x00" + m.To, kind: "system", a: m.To}
		default:
			a, b := m.From, m.To
			if b < a {
				a, b = b, a
			}
			s = impSession{key: "p\x00" + a + "\x00" + b, kind: "private", a: a, b: b}
		}
		p := by[s.key]
		if p == nil {
			p = &s
			by[s.key] = p
			out = append(out, p)
		}
		p.messages = append(p.messages, m)
	}
	for _, s := range out { // seqs in time order; ties keep the file's order
		sort.SliceStable(s.messages, func(i, j int) bool { return s.messages[i].CreatedAt < s.messages[j].CreatedAt })
	}
	return out
}

type importCounts struct {
	usersNew, usersChanged, usersSame int
	groupsNew, groupsSame             int
	membersAdded, rolesSet            int
	friendPairs, friended             int
	msgsNew, msgsSame, sessions       int
	msgsFailed                        atomic.Int64
	msgsDone                          atomic.Int64
}

func runImport(ctx context.Context, e *env, o importOpts) error {
	in, err := os.Open(o.file)
	if err != nil {
		return err
	}
	f, err := parseImport(in, time.Now().UnixMilli())
	in.Close()
	if err != nil {
		return fmt.Errorf("%s: %v; nothing imported", o.file, err)
	}
	for i, b := range f.bad {
		if i == 50 {
			fmt.Fprintf(e.stderr, "… and %d more bad records\n", len(f.bad)-50)
			break
		}
		fmt.Fprintf(e.stderr, "%s:%d: %s\n", o.file, b.line, b.msg)
	}
	if len(f.bad) > 0 && !o.skipBad {
		return fmt.Errorf("%s: %d bad records (first on line %d); nothing imported: fix them, or pass --skip-bad to import the rest",
			o.file, len(f.bad), f.bad[0].line)
	}
	fmt.Fprintf(e.stdout, "%s: %d users, %d friendships, %d groups, %d messages valid; %d bad records skipped\n",
		o.file, len(f.users), len(f.friends), len(f.groups), len(f.messages), len(f.bad))
	c, err := e.client(false, true)
	if err != nil {
		return err
	}
	st, err := loadImportState(o.state, c.App)
	if err != nil {
		return err
	}
	im := &importer{c: c, o: o, st: st, e: e}
	if err := im.users(ctx, f); err != nil {
		return err
	}
	if err := im.groups(ctx, f); err != nil {
		return err
	}
	if err := im.friends(ctx, f); err != nil {
		return err
	}
	if err := im.messages(ctx, f); err != nil {
		return err
	}
	n := &im.n
	verb := map[bool]string{true: "would be ", false: ""}[o.dryRun]
	fmt.Fprintf(e.stdout, "users: %d %snew, %d %supdated, %d unchanged\n", n.usersNew, verb, n.usersChanged, verb, n.usersSame)
	fmt.Fprintf(e.stdout, "groups: %d %screated, %d already imported; %d members %sadded to imported groups, %d admins %sset\n",
		n.groupsNew, verb, n.groupsSame, n.membersAdded, verb, n.rolesSet, verb)
	if o.dryRun {
		fmt.Fprintf(e.stdout, "friendships: %d pairs would be sent (pairs already friends change nothing)\n", n.friendPairs)
	} else {
		fmt.Fprintf(e.stdout, "friendships: %d added, %d already friends\n", n.friended, n.friendPairs-n.friended)
	}
	fmt.Fprintf(e.stdout, "messages: %d %ssent, %d already imported, in %d sessions\n", n.msgsNew, verb, n.msgsSame, n.sessions)
	if k := n.msgsFailed.Load(); k > 0 {
		return fmt.Errorf("%d messages failed (see above); run the import again to retry them", k)
	}
	return nil
}

type importer struct {
	c  *apiclient.Client
	o  importOpts
	st *importState
	e  *env
	n  importCounts
	mu sync.Mutex // e.stderr and counters written by workers
}

func (im *importer) logf(format string, a ...any) {
	im.mu.Lock()
	fmt.Fprintf(im.e.stderr, format+"\n", a...)
	im.mu.Unlock()
}

// parallel runs fn(i) for i in [0,n) on the importer's workers, printing
// progress; the first error stops it.
func (im *importer) parallel(ctx context.Context, what string, total int64, n int, done func() int64, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < im.o.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	if im.o.progress > 0 {
		go func() {
			t := time.NewTicker(im.o.progress)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					im.logf("import: %s %d/%d", what, done(), total)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// users pushes the users that are new or differ from chatd's record.
func (im *importer) users(ctx context.Context, f *importFile) error {
	var done atomic.Int64
	return im.parallel(ctx, "users", int64(len(f.users)), len(f.users), done.Load, func(ctx context.Context, i int) error {
		defer done.Add(1)
		u := f.users[i]
		cur, err := im.c.User(ctx, u.ID)
		var ae *apiclient.APIError
		isNew := errors.As(err, &ae) && ae.Code == "not_found"
		if err != nil && !isNew {
			return fmt.Errorf("%s:%d: reading user %q: %w", im.o.file, f.userLine[i], u.ID, err)
		}
		nick := u.Nickname
		if nick == "" {
			nick = u.ID
		}
		if !isNew && cur.Nickname == nick && cur.Avatar == u.Avatar && sameJSON(cur.Extra, u.Extra) {
			im.count(func(n *importCounts) { n.usersSame++ })
			return nil
		}
		if !im.o.dryRun {
			in := apiclient.PushUserInput{UID: u.ID, Nickname: u.Nickname, Avatar: u.Avatar, Extra: u.Extra}
			if _, err := im.c.PushUser(ctx, in); err != nil {
				return fmt.Errorf("%s:%d: pushing user %q: %w", im.o.file, f.userLine[i], u.ID, err)
			}
		}
		im.count(func(n *importCounts) {
			if isNew {
				n.usersNew++
			} else {
				n.usersChanged++
			}
		})
		return nil
	})
}

func (im *importer) count(fn func(n *importCounts)) {
	im.mu.Lock()
	fn(&im.n)
	im.mu.Unlock()
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b) || string(a) == "null" || string(b) == "null"
	}
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

// groups creates the groups the state file does not know yet, one at a
// time, saving the state after each so an interrupted run never creates a
// group twice. Groups it knows get the members and admin roles the file
// gives them that chatd lacks (nothing is removed: members who joined on
// chatd stay).
func (im *importer) groups(ctx context.Context, f *importFile) error {
	for i, g := range f.groups {
		id, known := im.st.get(im.st.Groups, g.ID)
		if known {
			im.n.groupsSame++
		} else {
			im.n.groupsNew++
		}
		var others, admins []string
		for _, m := range g.Members {
			if m.UID == g.Owner {
				continue
			}
			others = append(others, m.UID)
			if m.Role == "admin" {
				admins = append(admins, m.UID)
			}
		}
		if !known && im.o.dryRun {
			im.n.rolesSet += len(admins)
			continue
		}
		have := map[string]int{} // chatd's members and roles (1 member, 2 admin, 3 owner)
		if known {
			var err error
			if have, err = im.groupMembers(ctx, id); err != nil {
				return fmt.Errorf("reading the members of group %q (session %d): %w", g.ID, id, err)
			}
			var missing []string
			for _, u := range others {
				if have[u] == 0 {
					missing = append(missing, u)
				}
			}
			im.n.membersAdded += len(missing)
			if len(missing) > 0 && !im.o.dryRun {
				var out struct {
					Added []string `json:"added"`
				}
				path := "/api/v1/groups/" + strconv.FormatUint(id, 10) + "/members"
				if err := im.c.Do(ctx, http.MethodPost, path, map[string][]string{"add": missing}, &out); err != nil {
					return fmt.Errorf("adding members to group %q (session %d): %w", g.ID, id, err)
				}
				for _, u := range out.Added {
					have[u] = 1
				}
			}
		} else {
			s, err := im.c.CreateGroup(ctx, apiclient.GroupInput{Owner: g.Owner, Name: g.Name, Avatar: g.Avatar, Members: append([]string{}, others...)})
			if err != nil {
				return fmt.Errorf("creating group %q: %w", g.ID, err)
			}
			id = s.ID
			im.st.set(im.st.Groups, g.ID, id)
			if err := im.st.save(); err != nil {
				return fmt.Errorf("group %q is session %d, but saving the state file failed (a rerun would create it again): %w", g.ID, id, err)
			}
			for _, u := range others {
				have[u] = 1
			}
		}
		for _, u := range admins {
			if have[u] != 1 { // already admin (or owner on chatd's side)
				continue
			}
			im.n.rolesSet++
			if im.o.dryRun {
				continue
			}
			path := "/api/v1/groups/" + strconv.FormatUint(id, 10) + "/role"
			if err := im.c.Do(ctx, http.MethodPost, path, map[string]string{"uid": u, "role": "admin"}, nil); err != nil {
				return fmt.Errorf("making %q an admin of group %q (session %d): %w", u, g.ID, id, err)
			}
		}
		if im.o.progress > 0 && (i+1)%100 == 0 {
			im.logf("import: groups %d/%d", i+1, len(f.groups))
		}
	}
	return nil
}

// groupMembers reads every member of group id with their role number.
func (im *importer) groupMembers(ctx context.Context, id uint64) (map[string]int, error) {
	out := map[string]int{}
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Members []struct {
				UID  string `json:"uid"`
				Role int    `json:"role"`
			} `json:"members"`
			Next string `json:"next"`
		}
		path := "/api/v1/groups/" + strconv.FormatUint(id, 10) + "/members?" + q.Encode()
		if err := im.c.Do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		for _, m := range page.Members {
			out[m.UID] = m.Role
		}
		if page.Next == "" || len(page.Members) == 0 {
			return out, nil
		}
		after = page.Next
	}
}

// friends sends the friendships in batches of 10,000 (the API's limit);
// the server counts only pairs that changed.
func (im *importer) friends(ctx context.Context, f *importFile) error {
	im.n.friendPairs = len(f.friends)
	if im.o.dryRun {
		return nil
	}
	type pair struct {
		UID    string `json:"uid"`
		Peer   string `json:"peer"`
		Remark string `json:"remark,omitempty"`
	}
	for i := 0; i < len(f.friends); i += 10000 {
		var body struct {
			Friends []pair `json:"friends"`
		}
		for _, fr := range f.friends[i:min(i+10000, len(f.friends))] {
			body.Friends = append(body.Friends, pair{fr.UID, fr.Peer, fr.Remark})
		}
		var out struct {
			Friended int `json:"friended"`
		}
		if err := im.c.Do(ctx, http.MethodPost, "/api/v1/contacts/import", body, &out); err != nil {
			return fmt.Errorf("importing friendships %d-%d: %w", i+1, i+len(body.Friends), err)
		}
		im.n.friended += out.Friended
	}
	return nil
}

// messages sends each session's messages oldest first, leaving out those
// whose cid the session already holds. Sessions go in parallel.
func (im *importer) messages(ctx context.Context, f *importFile) error {
	sessions := sessionsOf(f.messages)
	im.n.sessions = len(sessions)
	err := im.parallel(ctx, "messages", int64(len(f.messages)), len(sessions), im.n.msgsDone.Load, func(ctx context.Context, i int) error {
		return im.session(ctx, sessions[i])
	})
	if serr := im.saveState(); err == nil {
		err = serr
	}
	return err
}

func (im *importer) saveState() error {
	if im.o.dryRun {
		return nil
	}
	return im.st.save()
}

// lookup finds the chatd session of s: from the state file, else (private
// and system sessions) from the user's session list. 0: none yet.
func (im *importer) lookup(ctx context.Context, s *impSession) (uint64, error) {
	if s.kind == "group" {
		id, _ := im.st.get(im.st.Groups, s.group)
		return id, nil
	}
	if id, ok := im.st.get(im.st.Sessions, s.key); ok {
		return id, nil
	}
	want, peer := "private", s.b
	if s.kind == "system" {
		want, peer = "system", ""
	}
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if peer != "" {
			q.Set("keyword", peer)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var out struct {
			Sessions []struct {
				ID   uint64 `json:"session_id"`
				Kind string `json:"kind"`
				Peer string `json:"peer"`
			} `json:"sessions"`
			Next string `json:"next_cursor"`
		}
		if err := im.c.Do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(s.a)+"/sessions?"+q.Encode(), nil, &out); err != nil {
			var ae *apiclient.APIError
			if errors.As(err, &ae) && ae.Code == "not_found" { // not pushed yet (a dry run)
				return 0, nil
			}
			return 0, err
		}
		for _, v := range out.Sessions {
			if v.Kind == want && v.Peer == peer {
				return v.ID, nil
			}
		}
		if out.Next == "" {
			return 0, nil
		}
		cursor = out.Next
	}
}

// imported reads session id's history: the import cids it holds and the
// time of its newest message.
func (im *importer) imported(ctx context.Context, id uint64) (map[string]bool, int64, error) {
	cids := map[string]bool{}
	var newest int64
	var before uint64
	for {
		page, err := im.c.History(ctx, id, before, 500)
		if err != nil {
			return nil, 0, err
		}
		if len(page) == 0 {
			return cids, newest, nil
		}
		if before == 0 {
			newest = page[len(page)-1].CreatedAt
		}
		for _, m := range page {
			if len(m.CID) > 4 && m.CID[:4] == "imp:" {
				cids[m.CID] = true
			}
		}
		if page[0].Seq <= 1 {
			return cids, newest, nil
		}
		before = page[0].Seq
	}
}

func (im *importer) session(ctx context.Context, s *impSession) error {
	id, err := im.lookup(ctx, s)
	if err != nil {
		return fmt.Errorf("finding the chatd session of line %d's message: %w", s.messages[0].line, err)
	}
	var have map[string]bool
	var newest int64
	if id != 0 {
		if have, newest, err = im.imported(ctx, id); err != nil {
			return fmt.Errorf("reading session %d: %w", id, err)
		}
	}
	for _, m := range s.messages {
		if have[m.cid] {
			im.count(func(n *importCounts) { n.msgsSame++ })
			im.n.msgsDone.Add(1)
			continue
		}
		if m.CreatedAt < newest {
			im.logf("%s:%d: message %q: created_at %d is before the newest message of chatd session %d (%d); not imported, since seqs must stay in time order",
				im.o.file, m.line, m.ID, m.CreatedAt, id, newest)
			im.n.msgsFailed.Add(1)
			im.n.msgsDone.Add(1)
			continue
		}
		if im.o.dryRun {
			im.count(func(n *importCounts) { n.msgsNew++ })
			im.n.msgsDone.Add(1)
			continue
		}
		in := apiclient.SendInput{From: m.From, To: m.To, Type: m.Type, Content: m.Content, CID: m.cid, CreatedAt: m.CreatedAt}
		if s.kind == "group" {
			in.To, in.Session = "", id
		}
		res, err := im.send(ctx, in)
		im.n.msgsDone.Add(1)
		if err != nil {
			var ae *apiclient.APIError
			if errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429 {
				im.logf("%s:%d: message %q: %v", im.o.file, m.line, m.ID, err)
				im.n.msgsFailed.Add(1)
				continue
			}
			return fmt.Errorf("%s:%d: message %q: %w", im.o.file, m.line, m.ID, err)
		}
		if id == 0 {
			id = res.Session
			im.st.set(im.st.Sessions, s.key, id)
		}
		newest = m.CreatedAt
		if !res.Duplicate {
			im.count(func(n *importCounts) { n.msgsNew++ })
		} else {
			im.count(func(n *importCounts) { n.msgsSame++ })
		}
	}
	return nil
}

// send retries what may pass on a second try (the server busy, a dropped
// connection) a few times; the cid makes a retry safe.
func (im *importer) send(ctx context.Context, in apiclient.SendInput) (apiclient.SendResult, error) {
	var res apiclient.SendResult
	var err error
	for try := 0; try < 5; try++ {
		if res, err = im.c.Send(ctx, in); err == nil {
			return res, nil
		}
		var ae *apiclient.APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429 {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Duration(200<<try) * time.Millisecond):
		}
	}
	return res, err
}

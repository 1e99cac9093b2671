package chat

import (
	"context"
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// appUsers is the registry of one app: its users by uid. Core.users maps an
// app id to it; Core.mu guards Core.users and every appUsers.
type appUsers struct {
	app   string    // the app id; shared by the Identity of every Client logged in to it
	users userTable // uid → user
}

// userTable is a set of users keyed by uid: an open-addressing hash table
// of *user with linear probing. The key is the user's own uid, so an entry
// costs one 8-byte slot at a load between 3/8 and 3/4 (about 14 bytes per
// user), where a map[string]*user costs a 24-byte slot plus control bytes
// at a lower load (about 43). Users are never removed, so there is no
// deletion. The zero value is empty and ready to use; not safe for
// concurrent use (Core.mu guards it).
type userTable struct {
	slots []*user // len is zero or a power of two
	n     int     // users in slots
}

// userSeed seeds the uid hash: random per process, so that uids cannot be
// chosen to collide.
var userSeed = maphash.MakeSeed()

// userTableMin is the number of slots of a table's first allocation.
const userTableMin = 8

// get returns the user with uid, or nil.
func (t *userTable) get(uid string) *user {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := maphash.String(userSeed, uid) & mask; ; i = (i + 1) & mask {
		u := t.slots[i]
		if u == nil || u.uid == uid {
			return u // the load stays under 1: an empty slot ends every probe
		}
	}
}

// add inserts u, whose uid must not be in t yet, growing t first if it
// would pass a load of 3/4.
func (t *userTable) add(u *user) {
	if 4*(t.n+1) > 3*len(t.slots) {
		old := t.slots
		t.slots = make([]*user, max(2*len(old), userTableMin))
		for _, x := range old {
			if x != nil {
				t.place(x)
			}
		}
	}
	t.place(u)
	t.n++
}

// place puts u in the first free slot of its probe sequence.
func (t *userTable) place(u *user) {
	mask := uint64(len(t.slots) - 1)
	i := maphash.String(userSeed, u.uid) & mask
	for t.slots[i] != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = u
}

// user is the core's in-memory handle on one (app, uid): its online devices.
// One exists for every user the process has seen; they are not freed. It is
// 48 bytes (TestClientSize): its app is the appUsers it is filed under.
type user struct {
	uid     string
	mu      sync.Mutex              // guards writers of clients
	clients atomic.Pointer[devices] // immutable snapshot: online devices; nil when none

	// The user's rate-limit buckets (limits.go): lock-free, shared by
	// all of the user's devices.
	sendTAT, reqTAT atomic.Int64
}

// devices is an immutable snapshot of a user's online devices. The common
// case, one device, costs this 16-byte struct alone; two or more are a
// slice behind more.
type devices struct {
	one  [1]*Client // the device, when more is nil
	more *[]*Client // two or more devices
}

// list returns the devices. The slice aliases d: read-only.
func (d *devices) list() []*Client {
	if d.more != nil {
		return *d.more
	}
	return d.one[:]
}

// newDevices returns the snapshot of cls (not empty; it is kept).
func newDevices(cls []*Client) *devices {
	if len(cls) == 1 {
		return &devices{one: [1]*Client{cls[0]}}
	}
	more := new([]*Client)
	*more = cls
	return &devices{more: more}
}

func (u *user) online() []*Client {
	if d := u.clients.Load(); d != nil {
		return d.list()
	}
	return nil
}

// add registers a logged-in device; it reports whether the user just came
// online (first device).
func (u *user) add(cl *Client) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.online()
	if len(old) == 0 {
		u.clients.Store(&devices{one: [1]*Client{cl}})
		return true
	}
	next := make([]*Client, len(old), len(old)+1)
	copy(next, old)
	u.clients.Store(newDevices(append(next, cl)))
	return false
}

// remove unregisters a device; it reports whether the user went offline.
func (u *user) remove(cl *Client) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.online()
	for i, x := range old {
		if x == cl {
			if len(old) == 1 {
				u.clients.Store(nil)
				return true
			}
			next := make([]*Client, 0, len(old)-1)
			next = append(next, old[:i]...)
			next = append(next, old[i+1:]...)
			u.clients.Store(newDevices(next))
			return false
		}
	}
	return false
}

// userRef returns the handle for (app, uid), creating it.
func (c *Core) userRef(app, uid string) *user {
	u, _ := c.userEntry(app, uid)
	return u
}

// userEntry returns the handle for (app, uid), creating it, and the
// registry's own copies of app and uid as an Identity: a Client that keeps
// those instead of the strings it was given shares them with the registry.
func (c *Core) userEntry(app, uid string) (*user, Identity) {
	c.mu.Lock()
	a := c.users[app]
	if a == nil {
		app = strings.Clone(app) // kept for the process's life: not a slice of a request
		a = &appUsers{app: app}
		c.users[app] = a
	}
	u := a.users.get(uid)
	if u == nil {
		u = &user{uid: uid}
		a.users.add(u)
	}
	c.mu.Unlock()
	return u, Identity{App: a.app, UID: u.uid}
}

// sess caches what the hot path needs of a session: kind and roster.
type sess struct {
	id     SessionID
	app    string
	kind   Kind
	mu     sync.Mutex                // serialises roster changes
	roster atomic.Pointer[roster]    // immutable snapshot
	conf   atomic.Pointer[GroupConf] // groups: immutable settings snapshot, swapped under mu; nil: none (groups_admin.go)
}

// roster is an immutable membership snapshot.
type roster struct {
	users []*user
	roles map[string]Role // uid → role
}

func (s *sess) members() *roster { return s.roster.Load() }

func (r *roster) has(uid string) bool { _, ok := r.roles[uid]; return ok }

func (r *roster) uids() []string {
	out := make([]string, len(r.users))
	for i, u := range r.users {
		out[i] = u.uid
	}
	return out
}

func (c *Core) newRoster(app string, ms []Member) *roster {
	r := &roster{users: make([]*user, 0, len(ms)), roles: make(map[string]Role, len(ms))}
	for _, m := range ms {
		if _, dup := r.roles[m.UID]; dup {
			continue
		}
		r.roles[m.UID] = m.Role
		r.users = append(r.users, c.userRef(app, m.UID))
	}
	return r
}

// session returns the cached session, loading it from the store. A session of
// another app is reported as not found.
func (c *Core) session(ctx context.Context, app string, id SessionID) (*sess, error) {
	c.mu.Lock()
	s := c.sessions[id]
	c.mu.Unlock()
	if s != nil {
		if s.app != app {
			return nil, errNoSession(id)
		}
		return s, nil
	}
	rec, err := c.store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errNoSession(id)
	}
	if err != nil {
		return nil, err
	}
	if rec.App != app {
		return nil, errNoSession(id)
	}
	ms, err := c.store.Members(ctx, id)
	if err != nil {
		return nil, err
	}
	s = &sess{id: id, app: rec.App, kind: rec.Kind}
	s.roster.Store(c.newRoster(rec.App, ms))
	if rec.Kind == KindGroup {
		cf, err := c.loadGroupConf(ctx, id) // groups_admin.go
		if err != nil {
			return nil, err
		}
		s.conf.Store(cf)
	}
	c.mu.Lock()
	if prev := c.sessions[id]; prev != nil {
		s = prev // another goroutine loaded it first
	} else {
		c.sessions[id] = s
	}
	c.mu.Unlock()
	return s, nil
}

// cacheSession records a session the core just created.
func (c *Core) cacheSession(rec *Session, ms []Member) *sess {
	s := &sess{id: rec.ID, app: rec.App, kind: rec.Kind}
	s.roster.Store(c.newRoster(rec.App, ms))
	c.mu.Lock()
	c.sessions[rec.ID] = s
	c.mu.Unlock()
	return s
}

func errNoSession(id SessionID) *Error {
	return &Error{Code: CodeNotFound, Message: "no session " + itoa(uint64(id))}
}

package chat

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// user is the core's in-memory handle on one (app, uid): its online devices.
// One exists for every user the process has seen; they are not freed.
type user struct {
	app, uid string
	mu       sync.Mutex                // guards writers of clients
	clients  atomic.Pointer[[]*Client] // immutable snapshot: online devices
}

func (u *user) online() []*Client {
	if p := u.clients.Load(); p != nil {
		return *p
	}
	return nil
}

// add registers a logged-in device; it reports whether the user just came
// online (first device).
func (u *user) add(cl *Client) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.online()
	next := make([]*Client, len(old), len(old)+1)
	copy(next, old)
	next = append(next, cl)
	u.clients.Store(&next)
	return len(old) == 0
}

// remove unregisters a device; it reports whether the user went offline.
func (u *user) remove(cl *Client) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.online()
	for i, x := range old {
		if x == cl {
			next := make([]*Client, 0, len(old)-1)
			next = append(next, old[:i]...)
			next = append(next, old[i+1:]...)
			if len(next) == 0 {
				u.clients.Store(nil)
			} else {
				u.clients.Store(&next)
			}
			return len(next) == 0
		}
	}
	return false
}

// userRef returns the handle for (app, uid), creating it.
func (c *Core) userRef(app, uid string) *user {
	k := userKey(app, uid)
	c.mu.Lock()
	u := c.users[k]
	if u == nil {
		u = &user{app: app, uid: uid}
		c.users[k] = u
	}
	c.mu.Unlock()
	return u
}

// sess caches what the hot path needs of a session: kind and roster.
type sess struct {
	id     SessionID
	app    string
	kind   Kind
	mu     sync.Mutex             // serialises roster changes
	roster atomic.Pointer[roster] // immutable snapshot
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

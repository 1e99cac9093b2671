package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"chatd/httpapi/apiclient"
)

// StateVersion is the state file's format version.
const StateVersion = 1

// State is what chatbench provisioned on a server, kept in the state file
// so that later runs reuse it instead of provisioning again. Users[i] is
// the user named UserID(i).
type State struct {
	Version int          `json:"version"`
	Server  string       `json:"server"` // HTTP base URL it was made on
	App     string       `json:"app"`
	Secret  string       `json:"secret"`
	Users   []StateUser  `json:"users"`
	Groups  []StateGroup `json:"groups,omitempty"`
}

// StateUser is one provisioned user and its chat token (empty once
// revoked by cleanup).
type StateUser struct {
	UID       string `json:"uid"`
	Token     string `json:"token,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"` // unix ms
}

// StateGroup is one provisioned group: users First … First+Members-1, the
// first one its owner.
type StateGroup struct {
	Key     string `json:"key"`
	Session uint64 `json:"session_id"`
	First   int    `json:"first"`
	Members int    `json:"members"`
}

// UserID is the uid of chatbench's i-th user.
func UserID(i int) string {
	s := strconv.Itoa(i)
	if len(s) < 6 {
		s = "000000"[len(s):] + s
	}
	return "bench-" + s
}

// LoadState reads a state file; a missing file gives an empty state.
func LoadState(path string) (*State, error) {
	st := &State{Version: StateVersion}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w (delete it or run with --fresh)", path, err)
	}
	if st.Version != StateVersion {
		return &State{Version: StateVersion}, nil
	}
	for i, u := range st.Users {
		if u.UID != UserID(i) { // hand-edited or foreign: start over
			return &State{Version: StateVersion}, nil
		}
	}
	return st, nil
}

// Save writes the state file atomically with mode 0600 (it holds the app
// secret and chat tokens).
func (st *State) Save(path string) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".chatbench-*.tmp")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// ProvisionReport is what provisioning did.
type ProvisionReport struct {
	App           string  `json:"app"`
	AppCreated    bool    `json:"app_created"`
	UsersReused   int     `json:"users_reused"`
	UsersPushed   int     `json:"users_pushed"`
	GroupsReused  int     `json:"groups_reused"`
	GroupsCreated int     `json:"groups_created"`
	TokensRevoked int     `json:"tokens_revoked,omitempty"`
	Seconds       float64 `json:"seconds"`
}

// tokenMargin is how long a reused token must still be valid after the
// run's deadline.
const tokenMargin = time.Hour

// provisioner makes and records what a run needs through the HTTP API.
type provisioner struct {
	api     *apiclient.Client
	path    string
	workers int
	rep     *ProvisionReport
	prog    *progress

	mu sync.Mutex // guards st (tokens are refreshed from connecting goroutines)
	st *State
}

// ensureApp makes sure the app exists and st has its secret. Users and
// groups recorded for another server, or for an app that no longer
// exists, are forgotten.
func (p *provisioner) ensureApp(ctx context.Context, appID string) error {
	apps, err := p.api.Apps(ctx)
	if err != nil {
		return fmt.Errorf("list apps (is the admin key right?): %w", err)
	}
	st := p.st
	if st.Server != p.api.BaseURL || st.App != appID {
		st.Users, st.Groups = nil, nil
	}
	st.Server, st.App = p.api.BaseURL, appID
	found := false
	for _, a := range apps {
		if a.ID == appID {
			found = true
			st.Secret = a.Secret
		}
	}
	if !found {
		st.Users, st.Groups = nil, nil
		a, err := p.api.CreateApp(ctx, appID, "chatbench")
		if err != nil {
			return fmt.Errorf("create app %s: %w", appID, err)
		}
		st.Secret = a.Secret
		p.rep.AppCreated = true
	}
	p.rep.App = appID
	p.api.App, p.api.Secret = appID, st.Secret
	return nil
}

// ensureUsers makes sure users 0…n-1 exist with tokens valid until at
// least validUntil, pushing the missing ones with Workers concurrent
// requests.
func (p *provisioner) ensureUsers(ctx context.Context, n int, validUntil time.Time) error {
	st := p.st
	for len(st.Users) < n {
		st.Users = append(st.Users, StateUser{UID: UserID(len(st.Users))})
	}
	limit := validUntil.Add(tokenMargin).UnixMilli()
	var todo []int
	for i := range n {
		if u := st.Users[i]; u.Token == "" || u.ExpiresAt < limit {
			todo = append(todo, i)
		}
	}
	p.rep.UsersReused = n - len(todo)
	if len(todo) == 0 {
		return nil
	}
	var done atomic.Int64
	p.prog.set("provision", func(b []byte) []byte {
		b = append(b, "provisioning users "...)
		b = strconv.AppendInt(b, done.Load(), 10)
		b = append(b, '/')
		return strconv.AppendInt(b, int64(len(todo)), 10)
	})
	err := parallel(ctx, p.workers, len(todo), func(ctx context.Context, k int) error {
		i := todo[k]
		r, err := p.api.PushUser(ctx, apiclient.PushUserInput{UID: UserID(i), Nickname: "chatbench " + strconv.Itoa(i), IssueToken: true})
		if err != nil {
			return fmt.Errorf("push user %s: %w", UserID(i), err)
		}
		p.mu.Lock()
		st.Users[i].Token, st.Users[i].ExpiresAt = r.Token, r.ExpiresAt
		p.mu.Unlock()
		done.Add(1)
		return nil
	})
	p.rep.UsersPushed = int(done.Load())
	return err
}

// token returns user i's uid and token. Safe for concurrent use.
func (p *provisioner) token(i int) (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.st.Users[i]
	return u.UID, u.Token
}

// refresh issues a new token for user i (its recorded one was refused).
func (p *provisioner) refresh(ctx context.Context, i int) (string, error) {
	uid := UserID(i)
	g, err := p.api.IssueToken(ctx, uid, 0)
	var ae *apiclient.APIError
	if errors.As(err, &ae) && ae.Code == "not_found" {
		// The server lost the user (data folder reset): push it again.
		r, perr := p.api.PushUser(ctx, apiclient.PushUserInput{UID: uid, Nickname: "chatbench " + strconv.Itoa(i), IssueToken: true})
		g, err = apiclient.TokenGrant{Token: r.Token, ExpiresAt: r.ExpiresAt}, perr
	}
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.st.Users[i].Token, p.st.Users[i].ExpiresAt = g.Token, g.ExpiresAt
	p.mu.Unlock()
	return g.Token, nil
}

// ensureGroup returns the session of the group named key made of users
// first … first+members-1, creating it when the state has none.
func (p *provisioner) ensureGroup(ctx context.Context, key string, first, members int) (uint64, error) {
	for _, g := range p.st.Groups {
		if g.Key == key && g.First == first && g.Members == members {
			p.rep.GroupsReused++
			return g.Session, nil
		}
	}
	uids := make([]string, 0, members-1)
	for i := first + 1; i < first+members; i++ {
		uids = append(uids, UserID(i))
	}
	s, err := p.api.CreateGroup(ctx, apiclient.GroupInput{Owner: UserID(first), Name: "chatbench " + key, Members: uids})
	if err != nil {
		return 0, fmt.Errorf("create group %s (%d members): %w", key, members, err)
	}
	p.st.Groups = append(p.st.Groups, StateGroup{Key: key, Session: s.ID, First: first, Members: members})
	p.rep.GroupsCreated++
	return s.ID, nil
}

// forgetGroup drops a recorded group the server no longer knows.
func (p *provisioner) forgetGroup(key string) {
	gs := p.st.Groups[:0]
	for _, g := range p.st.Groups {
		if g.Key != key {
			gs = append(gs, g)
		}
	}
	p.st.Groups = gs
}

// cleanup revokes every token chatbench recorded (which also disconnects
// their devices) and forgets them. Users stay: chatd cannot delete users.
func (p *provisioner) cleanup(ctx context.Context) error {
	var todo []int
	for i, u := range p.st.Users {
		if u.Token != "" {
			todo = append(todo, i)
		}
	}
	var n atomic.Int64
	err := parallel(ctx, p.workers, len(todo), func(ctx context.Context, k int) error {
		i := todo[k]
		if _, err := p.api.RevokeUserTokens(ctx, UserID(i)); err != nil {
			var ae *apiclient.APIError
			if !errors.As(err, &ae) || ae.Code != "not_found" {
				return fmt.Errorf("revoke tokens of %s: %w", UserID(i), err)
			}
		}
		p.mu.Lock()
		p.st.Users[i].Token, p.st.Users[i].ExpiresAt = "", 0
		p.mu.Unlock()
		n.Add(1)
		return nil
	})
	p.rep.TokensRevoked = int(n.Load())
	return err
}

// parallel runs fn(k) for k in [0, n) on up to workers goroutines and
// returns the first error (which stops handing out more work).
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, k int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(workers, 1), n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				if err := fn(ctx, k); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// newAPIClient returns an API client for base whose connections come from
// d (spread over the source addresses), keeping up to conns connections
// open.
func newAPIClient(base, adminKey string, d *dialer, conns int) *apiclient.Client {
	tr := &http.Transport{
		DialContext:         d.dialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &apiclient.Client{BaseURL: base, AdminKey: adminKey, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

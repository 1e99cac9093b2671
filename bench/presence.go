package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// PresenceReport is what the connect scenario's --friends option adds:
// how many presence events the server queued to devices while the users
// connected and were held.
type PresenceReport struct {
	FriendsPerUser int     `json:"friends_per_user"`
	Pairs          int64   `json:"pairs"`    // friendships in the ring
	ImportS        float64 `json:"import_s"` // time to import them
	Events         uint64  `json:"events"`   // presence events queued by the server
	WindowS        float64 `json:"window_s"` // from the start of the ramp to the last sample
	EventsPerS     float64 `json:"events_per_s"`
}

// importPair is one friendship of the host's contacts import.
type importPair struct {
	UID  string `json:"uid"`
	Peer string `json:"peer"`
}

// befriendRing makes user i friends with users i±1 … i±friends/2 (mod n)
// through POST /api/v1/contacts/import, in imports of at most 10,000
// pairs (the server's limit), and starts counting presence events.
func (e *env) befriendRing(n, friends int) (*presenceCount, error) {
	t0 := time.Now()
	var batch []importPair
	pairs := int64(0)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
		defer cancel()
		err := e.api.Do(ctx, http.MethodPost, "/api/v1/contacts/import", map[string]any{"friends": batch}, nil)
		if err != nil {
			return fmt.Errorf("import friendships: %w", err)
		}
		pairs += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	e.prog.set("friends", func(b []byte) []byte {
		b = append(b, "importing friendships "...)
		return strconv.AppendInt(b, pairs, 10)
	})
	for i := 0; i < n; i++ {
		for d := 1; d <= friends/2; d++ {
			batch = append(batch, importPair{UID: UserID(i), Peer: UserID((i + d) % n)})
			if len(batch) == 10_000 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	st, ok := e.sampleStatus(false)
	if !ok {
		return nil, fmt.Errorf("read the server's status: %s", e.rep.Server.Error)
	}
	e.rep.Presence = &PresenceReport{FriendsPerUser: friends, Pairs: pairs, ImportS: time.Since(t0).Seconds()}
	return &presenceCount{start: time.Now(), before: st.PresenceEvents}, nil
}

type presenceCount struct {
	start  time.Time
	before uint64
}

// finish samples the server's presence counter once more and fills the
// report.
func (p *presenceCount) finish(e *env) {
	st, ok := e.sampleStatus(false)
	if !ok {
		return
	}
	r := e.rep.Presence
	r.WindowS = time.Since(p.start).Seconds()
	r.Events = st.PresenceEvents - p.before
	if r.WindowS > 0 {
		r.EventsPerS = float64(r.Events) / r.WindowS
	}
}

//go:build linux

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/testpg"
)

// TestClusterConsultOwnerKilled: a consultation ends on time when the node
// running its clock is killed (docs/consultations.md, On a cluster: the
// takeover rule). Three real nodes on one PostgreSQL; the consultant and
// the customer are connected to the two nodes that do not own the
// domains, and the host's calls go through one of them (forwarded to the
// owner). The consultation (6 s bought, no free time) starts; once the
// owner has renewed its lease past the deadline, the owner is killed
// with SIGKILL, before the deadline. Its lease runs out after the
// deadline, so another node takes it over after the deadline: it must
// end the consultation time_up *at its deadline* — ended_at = started_at
// + bought, exactly 6 s active and billed — and tell both members; sends
// into it are refused afterwards.
//
// What is asserted depends on no scheduling: the kill comes before the
// deadline and the takeover after it (both checked against the lease as
// PostgreSQL holds it). The restart rule (the consultation going on with
// the time left at its last checkpoint, from the takeover) would end it
// about 6 s after the takeover; ending it at the takeover would end it
// at least the lease's length after the kill — both after the deadline.
func TestClusterConsultOwnerKilled(t *testing.T) {
	const bought = 6 // seconds
	ctx := context.Background()
	dsn := testpg.Start(t).NewDatabase(t)
	nodes := startCluster(t, dsn, []string{"n1", "n2", "n3"})
	app := nodes[0].app("shop")
	clusterReady(t, nodes, app, "shop")
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)

	// The owner: the domains lease's holder, as PostgreSQL says.
	var lease domainsLease
	waitFor(t, "a node holding the domains lease", func() bool {
		lease = readDomainsLease(t, db)
		return lease.live
	})
	owner := -1
	var others []int
	for i := range nodes {
		if fmt.Sprintf("n%d", i+1) == lease.node() {
			owner = i
		} else {
			others = append(others, i)
		}
	}
	if owner < 0 {
		t.Fatalf("the domains lease's holder %q is none of the nodes", lease.holder)
	}
	host := appOn(nodes[others[0]], app)
	law := login(t, nodes[others[0]].wsAddr, "shop", pushUser(t, app, "lawyer"))
	cust := login(t, nodes[others[1]].wsAddr, "shop", pushUser(t, app, "cust"))

	var v chat.ConsultView
	hostRetry(t, func() error {
		return host.Do(ctx, "POST", "/api/v1/consultations", map[string]any{"consultant": "lawyer", "customer": "cust",
			"seconds": bought, "free_seconds": 0, "price_per_minute": 60, "currency": "EUR"}, &v)
	})
	sid := v.ID
	sendIn := func(c *client, text string) frame {
		return doRetry(t, c, fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":%q}`, sid, text))
	}
	mustOK(t, sendIn(cust, "question"), "the customer's question")
	mustOK(t, doRetry(t, law, fmt.Sprintf(`"action":"consult_accept","session_id":%d`, sid)), "accept")
	mustOK(t, sendIn(law, "answer"), "the consultant's first reply")
	hostRetry(t, func() error { return host.Do(ctx, "GET", fmt.Sprintf("/api/v1/consultations/%d", sid), nil, &v) })
	deadline := v.StartedAt + bought*1000
	if v.State != chat.ConsultActive || v.StartedAt == 0 || v.Deadline != deadline {
		t.Fatalf("after the start: %+v, want active with its deadline at started_at + %d s", v, bought)
	}

	// Kill the owner once its lease reaches past the deadline, and before
	// the deadline: the takeover then comes after the deadline.
	waitFor(t, "the owner renewing its lease past the deadline", func() bool {
		lease = readDomainsLease(t, db)
		return lease.untilMS >= deadline
	})
	nodes[owner].kill9()
	killedAt := time.Now().UnixMilli()
	if killedAt >= deadline {
		t.Fatalf("the owner was killed %d ms after the deadline: the scenario needs it killed before (the machine stalled for seconds)", killedAt-deadline)
	}
	dead := readDomainsLease(t, db) // the dead owner's last renewal
	if dead.holder != lease.holder || dead.untilMS < deadline {
		t.Fatalf("the lease after the kill: %+v, want %s's until after the deadline %d", dead, lease.holder, deadline)
	}
	t.Logf("owner %s killed %d ms before the deadline; its lease runs out %d ms after it",
		lease.node(), deadline-killedAt, dead.untilMS-deadline)

	// Both members hear the end, from the new owner.
	for who, c := range map[string]*client{"the consultant": law, "the customer": cust} {
		ev := nextConsultEnd(t, c, uint64(sid))
		if ev.Op != "time_up" || ev.State != chat.ConsultEnded || ev.Reason != chat.EndTimeUp || ev.Record == nil {
			t.Fatalf("%s got the end %+v, want time_up with its record", who, ev)
		}
		checkTimeUpRecord(t, who+"'s end event", *ev.Record, v, deadline)
	}
	next := readDomainsLease(t, db)
	if next.holder == dead.holder || next.node() == lease.node() || !next.live {
		t.Fatalf("the domains lease after the end: %+v, want another node's", next)
	}

	// The host's view, through a surviving node that is not necessarily
	// the new owner.
	var rec chat.ConsultRecord
	hostRetry(t, func() error {
		return host.Do(ctx, "GET", fmt.Sprintf("/api/v1/consultations/%d/record", sid), nil, &rec)
	})
	checkTimeUpRecord(t, "the record", rec, v, deadline)
	var page chat.ConsultRecordsPage
	hostRetry(t, func() error { return host.Do(ctx, "GET", "/api/v1/consult-records?consultant=lawyer", nil, &page) })
	if len(page.Records) != 1 {
		t.Fatalf("consult-records: %+v, want the one record", page)
	}
	checkTimeUpRecord(t, "consult-records", page.Records[0], v, deadline)
	var after chat.ConsultView
	hostRetry(t, func() error { return host.Do(ctx, "GET", fmt.Sprintf("/api/v1/consultations/%d", sid), nil, &after) })
	if after.State != chat.ConsultEnded || after.EndReason != chat.EndTimeUp || after.EndedAt != deadline || after.RemainingSeconds != 0 {
		t.Fatalf("the consultation after the takeover: %+v, want ended time_up at %d", after, deadline)
	}

	// Nobody may write into it any more.
	for who, c := range map[string]*client{"the consultant": law, "the customer": cust} {
		r := sendIn(c, "too late")
		if r.OK || r.Error.Code != chat.CodeForbidden || r.Error.Message != "the consultation has ended" {
			t.Fatalf("%s's send after the end: %s", who, r.raw)
		}
	}
}

// checkTimeUpRecord: rec is the billing record of consultation v (no
// pause, no free time) ended time_up at its deadline.
func checkTimeUpRecord(t *testing.T, what string, rec chat.ConsultRecord, v chat.ConsultView, deadline int64) {
	t.Helper()
	if rec.ID != v.ID || rec.State != chat.ConsultEnded || rec.EndReason != chat.EndTimeUp ||
		rec.StartedAt != v.StartedAt || rec.EndedAt != deadline || rec.PausedSeconds != 0 ||
		rec.BoughtSeconds != v.BoughtSec || rec.FreeSeconds != 0 ||
		rec.ActiveSeconds != v.BoughtSec || rec.BilledSeconds != v.BoughtSec || rec.FreeUsed != 0 {
		t.Fatalf("%s: %+v\nwant ended time_up at started_at + %d s = %d (ended %+d ms from it), %d s active and billed",
			what, rec, v.BoughtSec, deadline, rec.EndedAt-deadline, v.BoughtSec)
	}
}

// domainsLease is the domains lease's row as PostgreSQL holds it.
type domainsLease struct {
	holder  string
	untilMS int64 // unix ms
	live    bool  // until > now(), on the database's clock
}

func (l domainsLease) node() string { n, _, _ := strings.Cut(l.holder, "/"); return n }

func readDomainsLease(t *testing.T, db *pgx.Conn) domainsLease {
	t.Helper()
	var l domainsLease
	err := db.QueryRow(context.Background(), `SELECT holder, (extract(epoch FROM until) * 1000)::bigint, until > now()
		FROM leases WHERE name = 'domains'`).Scan(&l.holder, &l.untilMS, &l.live)
	if err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	return l
}

// waitFor polls cond until it holds, up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s in 30 s", what)
		}
	}
}

// doRetry is c.do retried while the answer is unavailable (the owner
// changing: docs/cluster.md), as the SDK does, up to 30 s.
func doRetry(t *testing.T, c *client, fields string) frame {
	t.Helper()
	var r frame
	waitFor(t, "answer but unavailable to "+fields, func() bool {
		r = c.do(fields)
		return r.OK || r.Error == nil || r.Error.Code != chat.CodeUnavailable
	})
	return r
}

// hostRetry runs a host call, retried while it is answered unavailable,
// up to 30 s; any other error fails the test.
func hostRetry(t *testing.T, call func() error) {
	t.Helper()
	var err error
	waitFor(t, "host call answered", func() bool {
		err = call()
		ae, ok := err.(*apiclient.APIError)
		return err == nil || !ok || ae.Code != string(chat.CodeUnavailable)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nextConsultEnd waits up to 30 s for the consult event that ends
// consultation sid, skipping counts, warnings and other events.
func nextConsultEnd(t *testing.T, c *client, sid uint64) chat.ConsultEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatal("connection closed waiting for the consultation's end")
			}
			if f.Event != "consult" {
				continue
			}
			var ev chat.ConsultEvent
			if err := json.Unmarshal(f.Data, &ev); err != nil {
				t.Fatalf("consult event %s: %v", f.Data, err)
			}
			if uint64(ev.SessionID) == sid && ev.Type == "state" && ev.State == chat.ConsultEnded {
				return ev
			}
		case <-timeout:
			t.Fatal("no end of the consultation in 30 s")
		}
	}
}

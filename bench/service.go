package bench

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Service drives customer service: Shops shops with Agents agents each
// and Customers customers each, every user online on its own connection.
// The host API creates the shops and makes the agents (capacity enough for
// all of their shop's customers); every customer opens a conversation
// (service_open), which is routed at once; then customers and their agents
// send Rate messages/s in total, open-loop, alternating. Each message has
// one recipient device, as in p2p, so the two compare: a message in a
// service conversation should cost what a private one costs.
//
// It reports the messages like p2p, and the time from a customer's
// service_open to its assignment (the reply saying "open"). At the end the
// host resolves every conversation, so the next run's opens are routed
// again (a reopen).
type Service struct {
	Shops     int     `json:"shops"`     // zero means 10
	Agents    int     `json:"agents"`    // per shop; zero means 3
	Customers int     `json:"customers"` // per shop; zero means 30
	Rate      float64 `json:"rate"`      // messages/s in total; zero means 2,000
}

// ServiceReport is the service scenario's routing figures.
type ServiceReport struct {
	Shops          int              `json:"shops"`
	Agents         int              `json:"agents"`
	Customers      int              `json:"customers"`
	Assigned       int64            `json:"assigned"` // opens answered "open"
	Queued         int64            `json:"queued"`   // opens answered "queued" (no agent free)
	Errors         map[string]int64 `json:"errors,omitempty"`
	OpenToAssigned Latency          `json:"open_to_assigned"` // service_open sent → its reply saying "open"
}

// Name implements Scenario.
func (*Service) Name() string { return "service" }

func (s *Service) check(*Options) error {
	if s.Shops == 0 {
		s.Shops = 10
	}
	if s.Agents == 0 {
		s.Agents = 3
	}
	if s.Customers == 0 {
		s.Customers = 30
	}
	if s.Rate == 0 {
		s.Rate = 2000
	}
	if s.Shops < 1 || s.Agents < 1 || s.Customers < 1 || s.Rate < 0 {
		return errors.New("service: --shops, --agents and --customers must be at least 1, --rate positive")
	}
	return nil
}

func (s *Service) perShop() int { return s.Agents + s.Customers }
func (s *Service) users() int   { return s.Shops * s.perShop() }
func (s *Service) sockets() int { return s.users() }

// serviceConv is a customer's conversation as service_open answered.
type serviceConv struct {
	Session uint64 `json:"session_id"`
	Status  string `json:"status"`
	Agent   string `json:"agent"`
}

// serviceShopID names shop i of the benchmark.
func serviceShopID(i int) string { return "bench-" + strconv.Itoa(i) }

func (s *Service) run(e *env) error {
	conns := e.ramp(seq(0, s.users()))
	defer e.closeAll(conns)
	if e.stopped() {
		return nil
	}
	api := *e.api
	host := func(ctx context.Context, body string, out any) error {
		return api.Do(ctx, http.MethodPost, "/api/v1/service", json.RawMessage(body), out)
	}
	capacity := (s.Customers + s.Agents - 1) / s.Agents
	e.prog.set("shops", func(b []byte) []byte { return append(b, "creating shops and agents"...) })
	for i := range s.Shops {
		shop := strconv.Quote(serviceShopID(i))
		if err := host(e.ctx, `{"action":"shop_put","shop":`+shop+`,"settings":{"strategy":"balanced"}}`, nil); err != nil {
			return errors.New("service: creating shop " + shop + ": " + err.Error())
		}
		for a := range s.Agents {
			uid := strconv.Quote(UserID(i*s.perShop() + a))
			if err := host(e.ctx, `{"action":"agent_put","shop":`+shop+`,"uid":`+uid+`,"capacity":`+strconv.Itoa(capacity)+`,"status":"online"}`, nil); err != nil {
				return errors.New("service: making " + uid + " an agent: " + err.Error())
			}
		}
	}

	// Every customer opens its conversation; the reply says whether it
	// was assigned.
	convs := make([]serviceConv, s.users())
	rec := NewRecorder()
	var assigned, queued atomic.Int64
	var fails counts
	e.prog.set("open", func(b []byte) []byte { return append(b, "customers opening conversations"...) })
	parallel(e.ctx, 64, s.Shops*s.Customers, func(ctx context.Context, k int) error {
		i := k/s.Customers*s.perShop() + s.Agents + k%s.Customers
		c := conns[i]
		if c == nil {
			return nil
		}
		t0 := time.Now()
		err := c.callData(ctx, []byte(`{"action":"service_open","shop":`+strconv.Quote(serviceShopID(k/s.Customers))+`}`), &convs[i])
		switch {
		case err != nil:
			if ctx.Err() == nil {
				fails.add(err.Error(), 1)
			}
		case convs[i].Status == "open":
			rec.Record(k, time.Since(t0))
			assigned.Add(1)
		default:
			queued.Add(1)
		}
		return nil
	})
	e.rep.Service = &ServiceReport{Shops: s.Shops, Agents: s.Shops * s.Agents, Customers: s.Shops * s.Customers,
		Assigned: assigned.Load(), Queued: queued.Load(), Errors: fails.snapshot(), OpenToAssigned: rec.Summary()}
	if n := fails.total(); n > 0 {
		e.problem(group3(n) + " service_open requests failed (" + joinCounts(fails.snapshot()) + ")")
	}
	if n := queued.Load(); n > 0 {
		e.problem(group3(n) + " customers were queued: their shop had no agent free (agents not connected?)")
	}
	defer s.resolveAll(e, host, convs)

	// Senders: each assigned customer and its agent, when both are online.
	byUID := make(map[string]*wsConn, s.users())
	for i, c := range conns {
		if c != nil {
			byUID[UserID(i)] = c
		}
	}
	type sender struct {
		c       *wsConn
		session uint64
	}
	var senders []sender
	for i, cv := range convs {
		if cv.Status != "open" || conns[i] == nil || byUID[cv.Agent] == nil {
			continue
		}
		senders = append(senders, sender{conns[i], cv.Session}, sender{byUID[cv.Agent], cv.Session})
	}
	if len(senders) == 0 {
		return errors.New("service: no conversation has its customer and its agent connected")
	}
	e.liveTraffic("run")
	n := int64(len(senders))
	sendFor := e.drive(s.Rate, len(senders), func(k int64) (*wsConn, uint64) {
		sd := senders[k%n]
		return sd.c, sd.session
	})
	e.drainTraffic(e.tr.acked.Load)
	e.rep.Messages = e.finishMessages(s.Rate, sendFor, e.tr.acked.Load(), false)
	e.sampleStatus(false)
	return nil
}

// resolveAll resolves the run's conversations through the host API, so
// that the next run's opens are routed again.
func (s *Service) resolveAll(e *env, host func(context.Context, string, any) error, convs []serviceConv) {
	e.prog.set("resolve", func(b []byte) []byte { return append(b, "resolving the conversations"...) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parallel(ctx, 16, len(convs), func(ctx context.Context, i int) error {
		if convs[i].Session != 0 && convs[i].Status != "resolved" {
			host(ctx, `{"action":"resolve","session_id":`+strconv.FormatUint(convs[i].Session, 10)+`}`, nil)
		}
		return nil
	})
}

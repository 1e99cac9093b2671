package bench

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Broadcast measures the host's broadcast (POST /api/v1/broadcasts): with
// Users provisioned users of the app and Online of them connected, it
// sends Count notices to every user of the app, one after another, and
// reports for each the time chatd took to accept it (the answer comes once
// it is durable and pushed to the online devices), how fast it reached the
// online users (deliveries/s, from the request to the last delivery), and
// the disk it cost: the growth of chatd's data files (chat.db and its
// write-ahead log) when DataDir names chatd's data folder on this machine.
// A broadcast is stored once, so the disk figure is about one message
// however many users there are (both files grow in chunks: a single
// broadcast may show 0 or a whole chunk; more broadcasts average it out).
type Broadcast struct {
	Users   int    `json:"users"`    // provisioned users (the audience); zero means 100,000
	Online  int    `json:"online"`   // connected users; zero means 10,000
	Count   int    `json:"count"`    // broadcasts; zero means 1
	DataDir string `json:"data_dir"` // chatd's data folder, to measure disk cost; empty: not measured
}

// Name implements Scenario.
func (*Broadcast) Name() string { return "broadcast" }

func (s *Broadcast) check(o *Options) error {
	if o.Trace != "" {
		return errors.New("broadcast: --trace follows WebSocket sends; a broadcast comes over HTTP")
	}
	if s.Users == 0 {
		s.Users = 100000
	}
	if s.Online == 0 {
		s.Online = 10000
	}
	if s.Count == 0 {
		s.Count = 1
	}
	if s.Users < 1 || s.Online < 1 || s.Online > s.Users || s.Count < 1 {
		return errors.New("broadcast: --users and --count must be at least 1, and --online between 1 and --users")
	}
	return nil
}

func (s *Broadcast) users() int   { return s.Users }
func (s *Broadcast) sockets() int { return s.Online + 4 }

// BroadcastReport is the broadcast scenario's figures.
type BroadcastReport struct {
	Users      int   `json:"users"`
	Online     int64 `json:"online"` // connections logged in when the first broadcast went
	Broadcasts int   `json:"broadcasts"`
	// AcceptMS is each broadcast's request → answer (durable, and handed
	// to the online devices' queues).
	AcceptMS []float64 `json:"accept_ms"`
	// DeliverMS is each broadcast's request → last delivery to an online
	// client; DeliveriesPerS is the online deliveries over that time.
	DeliverMS      []float64 `json:"deliver_ms"`
	DeliveriesPerS []float64 `json:"deliveries_per_s"`
	Delivered      int64     `json:"delivered"`
	Expected       int64     `json:"expected"`
	ServerOnline   []int     `json:"server_online"` // devices chatd says it pushed each to
	// DiskBytes is the growth of chatd's data files over the broadcasts
	// (-1: not measured).
	DiskBytes int64 `json:"disk_bytes"`
}

// dataFilesSize sums the sizes of chatd's data files in dir.
func dataFilesSize(dir string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, de := range ents {
		if !strings.HasPrefix(de.Name(), "chat.db") {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, de.Name()))
		if err != nil {
			continue // a WAL file rotated away meanwhile
		}
		n += fi.Size()
	}
	return n, nil
}

func (s *Broadcast) run(e *env) error {
	conns := e.ramp(seq(0, s.Online))
	defer e.closeAll(conns)
	if e.stopped() {
		return nil
	}
	tr := e.tr
	br := &BroadcastReport{Users: s.Users, Online: tr.online.Load(), Broadcasts: s.Count, DiskBytes: -1}
	e.rep.Broadcast = br
	var disk0 int64
	if s.DataDir != "" {
		var err error
		if disk0, err = dataFilesSize(s.DataDir); err != nil {
			return errors.New("broadcast: --data: " + err.Error())
		}
	}
	e.liveTraffic("run")
	e.markServer()
	reqCtx := context.WithoutCancel(e.ctx)
	for i := 0; i < s.Count && !e.stopped(); i++ {
		online := tr.online.Load()
		before := tr.delivered.Load()
		t0 := e.clk.now()
		body := []byte(`{"content":{"t":` + strconv.FormatInt(t0, 10) + `,"r":"` + e.runTag + `","text":"chatbench broadcast ` + strconv.Itoa(i) + `"}}`)
		var res struct {
			Seq    uint64 `json:"seq"`
			Online int    `json:"online"`
		}
		ctx, cancel := context.WithTimeout(reqCtx, 2*time.Minute)
		err := e.api.Do(ctx, http.MethodPost, "/api/v1/broadcasts", body, &res)
		cancel()
		accepted := e.clk.now()
		if err != nil {
			e.problem("broadcast " + strconv.Itoa(i) + ": " + err.Error())
			break
		}
		br.AcceptMS = append(br.AcceptMS, float64(accepted-t0)/1e6)
		br.ServerOnline = append(br.ServerOnline, res.Online)
		br.Expected += online
		// Wait for every online client to have it (or the drain time).
		deadline := time.Now().Add(e.o.Drain)
		for tr.delivered.Load()-before < online && time.Now().Before(deadline) && !e.stopped() {
			time.Sleep(time.Millisecond)
		}
		got := tr.delivered.Load() - before
		last := tr.lastDelivery.Load()
		d := float64(max(last-t0, 1))
		br.DeliverMS = append(br.DeliverMS, d/1e6)
		br.DeliveriesPerS = append(br.DeliveriesPerS, float64(got)/(d/1e9))
		if got < online {
			e.problem("broadcast " + strconv.Itoa(i) + ": delivered to " + strconv.FormatInt(got, 10) + " of " + strconv.FormatInt(online, 10) + " online clients")
		}
	}
	br.Delivered = tr.delivered.Load()
	if s.DataDir != "" {
		if disk1, err := dataFilesSize(s.DataDir); err == nil {
			br.DiskBytes = disk1 - disk0
		}
	}
	return nil
}

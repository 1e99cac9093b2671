package bench

import (
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured, with the parameters used. Its JSON
// form (one line, WriteJSON) carries every figure; WriteTable prints the
// same for people.
type Report struct {
	Scenario    string        `json:"scenario"`
	Params      any           `json:"params"`
	Options     ReportOptions `json:"options"`
	Started     time.Time     `json:"started"`
	ElapsedS    float64       `json:"elapsed_s"`
	OK          bool          `json:"ok"`
	Problems    []string      `json:"problems"`
	Notes       []string      `json:"notes,omitempty"` // caveats about the figures (a busy host, a late client); not failures
	Interrupted bool          `json:"interrupted"`     // stopped early by the user
	DeadlineHit bool          `json:"deadline_hit"`    // stopped by --deadline

	Provision ProvisionReport  `json:"provision"`
	Conns     ConnReport       `json:"conns"`
	Messages  *MessageReport   `json:"messages,omitempty"`
	Churn     *ChurnReport     `json:"churn,omitempty"`
	HTTP      *HTTPReport      `json:"http,omitempty"`
	Service   *ServiceReport   `json:"service,omitempty"`
	Broadcast *BroadcastReport `json:"broadcast,omitempty"`
	Presence  *PresenceReport  `json:"presence,omitempty"` // connect --friends (presence.go)
	Server    ServerReport     `json:"server"`
	Client    ClientReport     `json:"client"`
	// HostStalls is a sampler sleeping 1 ms at a time through the run,
	// in a process of its own (Options.StallSampler): how late it woke
	// says how often the machine itself stopped (see Probe), which no
	// server can hide.
	HostStalls *StallReport `json:"host_stalls,omitempty"`
}

// ReportOptions are the shared options a run used.
type ReportOptions struct {
	WS              string   `json:"ws"`
	WSAddrs         []string `json:"ws_addrs,omitempty"` // every WebSocket address, when connections were spread over several
	Place           string   `json:"place,omitempty"`    // with several WebSocket addresses: "" (spread) or "together"
	HTTP            string   `json:"http"`
	Sources         []string `json:"sources"`
	App             string   `json:"app"`
	State           string   `json:"state,omitempty"`
	Fresh           bool     `json:"fresh"`
	Cleanup         bool     `json:"cleanup"`
	DurationS       float64  `json:"duration_s"`
	DrainS          float64  `json:"drain_s"`
	DeadlineS       float64  `json:"deadline_s"`
	ConnectRate     float64  `json:"connect_rate"`
	DialConcurrency int      `json:"dial_concurrency"`
	ConnectTimeoutS float64  `json:"connect_timeout_s"`
	Window          int      `json:"window"`
	Size            int      `json:"size"`
	Workers         int      `json:"workers"`
}

// ConnReport is the connection ramp and what happened to the connections.
type ConnReport struct {
	Attempted       int64            `json:"attempted"`
	Connected       int64            `json:"connected"`
	Failed          int64            `json:"failed"`
	Failures        map[string]int64 `json:"failures,omitempty"` // "stage: cause" → count
	RampS           float64          `json:"ramp_s"`
	RatePerS        float64          `json:"rate_per_s"` // connected / ramp time
	Latency         Latency          `json:"latency"`    // dial → login acknowledged
	Disconnects     map[string]int64 `json:"disconnects,omitempty"`
	TokensRefreshed int64            `json:"tokens_refreshed,omitempty"`
}

// MessageReport is the message traffic of p2p, group, churn and http.
type MessageReport struct {
	OfferedRate        float64          `json:"offered_rate"` // messages/s the schedule asked for
	SendS              float64          `json:"send_s"`       // length of the sending phase
	Scheduled          int64            `json:"scheduled"`
	Skipped            int64            `json:"skipped,omitempty"` // sender offline (churn)
	Sent               int64            `json:"sent"`
	Acked              int64            `json:"acked"`
	Duplicates         int64            `json:"duplicates"`
	Errors             map[string]int64 `json:"errors,omitempty"` // by server error code
	Unacked            int64            `json:"unacked"`          // sent, no reply by the end of the drain
	Lost               int64            `json:"lost"`             // sent, connection ended before the reply
	Unsent             int64            `json:"unsent"`           // queued on a connection that ended
	ExpectedDeliveries int64            `json:"expected_deliveries"`
	Delivered          int64            `json:"delivered"`
	Missing            int64            `json:"missing"`
	Extra              int64            `json:"extra"`
	Echoes             int64            `json:"echoes,omitempty"`
	Foreign            int64            `json:"foreign,omitempty"`
	AckedPerS          float64          `json:"acked_per_s"`
	DeliveredPerS      float64          `json:"delivered_per_s"`
	AckLatency         Latency          `json:"ack_latency"`
	DeliveryLatency    Latency          `json:"delivery_latency"`
	SendLag            Latency          `json:"send_lag"`
	// The server's own figures for the run, from its /metrics read
	// before the schedule and after the drain (absent when it does not
	// serve them): a WebSocket send decoded → its ack queued (after the
	// commit, and after the deliveries of a small batch), and one group
	// commit. No max: the server keeps buckets, not samples.
	ServerSendAck *ServerLatency `json:"server_send_ack,omitempty"`
	ServerCommit  *ServerLatency `json:"server_commit,omitempty"`
	// Trace splits every delivery's latency into its parts (--trace).
	Trace *TraceReport `json:"trace,omitempty"`
}

// ChurnReport is what the churn scenario checked.
type ChurnReport struct {
	Reconnects        int64            `json:"reconnects"`
	ReconnectFailures map[string]int64 `json:"reconnect_failures,omitempty"`
	ReconnectLatency  Latency          `json:"reconnect_latency"` // close → logged in again
	SyncCalls         int64            `json:"sync_calls"`
	SyncLatency       Latency          `json:"sync_latency"`
	SyncErrors        map[string]int64 `json:"sync_errors,omitempty"`
	SyncedMessages    int64            `json:"synced_messages"`   // messages returned by sync
	RecoveredBySync   int64            `json:"recovered_by_sync"` // seen first through sync
	SeenTwice         int64            `json:"seen_twice"`        // live and by sync (harmless)
	Expected          int64            `json:"expected"`          // (member, seq) pairs to see
	Missed            int64            `json:"missed"`
}

// HTTPReport is the http scenario's requests.
type HTTPReport struct {
	Concurrency int              `json:"concurrency"`
	Requests    int64            `json:"requests"`
	OK          int64            `json:"ok"`
	Errors      map[string]int64 `json:"errors,omitempty"`
	RatePerS    float64          `json:"rate_per_s"`
	Latency     Latency          `json:"latency"` // intended send time → HTTP answer
}

// ServerReport is the server's own figures (GET /admin/v1/status).
type ServerReport struct {
	Version      string `json:"version,omitempty"`
	PID          int    `json:"pid,omitempty"`
	ConnsBefore  int    `json:"conns_before"`
	ConnsPeak    int    `json:"conns_peak"`
	RSSBefore    uint64 `json:"rss_before,omitempty"`
	RSSPeak      uint64 `json:"rss_peak,omitempty"`
	HeapBefore   uint64 `json:"heap_before,omitempty"`
	HeapPeak     uint64 `json:"heap_peak,omitempty"`
	BytesPerConn int64  `json:"bytes_per_conn,omitempty"` // connect: (peak − before) / connections
	MemorySource string `json:"memory_source,omitempty"`  // "rss_bytes" (the server's figure), "proc_statm" (read from /proc for a local server that does not report it) or "heap_bytes"
	Error        string `json:"error,omitempty"`
}

// ClientReport is chatbench's own cost, to judge whether the client was
// the bottleneck.
type ClientReport struct {
	CPUSeconds float64 `json:"cpu_s"`
	CPUCores   float64 `json:"cpu_cores"` // CPU seconds / elapsed seconds
	GOMAXPROCS int     `json:"gomaxprocs"`
	FDLimit    uint64  `json:"fd_limit,omitempty"`
	NumCPU     int     `json:"num_cpu"`
	LoadBefore float64 `json:"load_before,omitempty"` // host 1-minute load average (Linux)
	LoadAfter  float64 `json:"load_after,omitempty"`
	Sockets    int     `json:"sockets"` // WebSocket connections the scenario opens
}

// WriteJSON writes r as one JSON line.
func (r *Report) WriteJSON(w io.Writer) error { return writeJSONLine(w, r) }

// writeJSONLine writes v as one JSON line.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// newTable returns a tab-aligned writer over w with its two kinds of
// line: a heading, and an indented row of cells. Flush it when done.
func newTable(w io.Writer) (tw *tabwriter.Writer, head func(string), row func(string, ...string)) {
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head = func(s string) { io.WriteString(tw, s+"\n") }
	row = func(k string, vs ...string) { io.WriteString(tw, "  "+k+"\t"+strings.Join(vs, "\t")+"\n") }
	return tw, head, row
}

// WriteTable writes r for people.
func (r *Report) WriteTable(w io.Writer) error {
	tw, head, row := newTable(w)

	verdict := "OK"
	switch {
	case r.Interrupted && len(r.Problems) == 0:
		verdict = "INTERRUPTED"
	case r.Interrupted:
		verdict = "FAILED (interrupted)"
	case r.DeadlineHit:
		verdict = "FAILED (deadline reached)"
	case !r.OK:
		verdict = "FAILED"
	}
	head("chatbench " + r.Scenario + ": " + verdict + " in " + fmtFloat(r.ElapsedS, 1) + "s")
	head("target")
	if len(r.Options.WSAddrs) > 1 {
		row("websocket", strings.Join(r.Options.WSAddrs, ", "))
	} else {
		row("websocket", r.Options.WS)
	}
	row("http", r.Options.HTTP)
	if len(r.Options.Sources) > 0 {
		row("sources", strings.Join(compactSources(r.Options.Sources), ", "))
	}
	if p := paramsLine(r.Params); p != "" {
		row("parameters", p)
	}
	row("options", "duration "+fmtFloat(r.Options.DurationS, 1)+"s, drain "+fmtFloat(r.Options.DrainS, 1)+
		"s, window "+strconv.Itoa(r.Options.Window)+", size "+strconv.Itoa(r.Options.Size)+"B")

	pr := r.Provision
	head("provisioning")
	row("app", pr.App+map[bool]string{true: " (created)", false: " (reused)"}[pr.AppCreated])
	row("users", strconv.Itoa(pr.UsersReused)+" reused, "+strconv.Itoa(pr.UsersPushed)+" pushed, in "+fmtFloat(pr.Seconds, 2)+"s")
	if pr.GroupsReused+pr.GroupsCreated > 0 {
		row("groups", strconv.Itoa(pr.GroupsReused)+" reused, "+strconv.Itoa(pr.GroupsCreated)+" created")
	}
	if pr.TokensRevoked > 0 {
		row("cleanup", strconv.Itoa(pr.TokensRevoked)+" users' tokens revoked")
	}

	c := r.Conns
	head("connections")
	row("connected", group3(c.Connected)+" of "+group3(c.Attempted)+" in "+fmtFloat(c.RampS, 2)+"s", fmtRate(c.RatePerS, "conn"))
	if c.Latency.Count > 0 {
		row("latency", "p50", "p90", "p99", "p99.9", "max", "count")
		row("connect+login", latencyCells(c.Latency)...)
	}
	for _, k := range sortedKeys(c.Failures) {
		row("failed: "+k, group3(c.Failures[k]))
	}
	for _, k := range sortedKeys(c.Disconnects) {
		row("dropped: "+k, group3(c.Disconnects[k]))
	}
	if c.TokensRefreshed > 0 {
		row("tokens reissued", group3(c.TokensRefreshed))
	}
	if p := r.Presence; p != nil {
		head("presence")
		row("friends", strconv.Itoa(p.FriendsPerUser)+" per user, "+group3(p.Pairs)+" friendships imported in "+fmtFloat(p.ImportS, 2)+"s")
		row("events", group3(int64(p.Events))+" in "+fmtFloat(p.WindowS, 2)+"s", fmtRate(p.EventsPerS, "event"))
	}

	if m := r.Messages; m != nil {
		head("messages")
		row("offered", fmtRate(m.OfferedRate, "msg")+" for "+fmtFloat(m.SendS, 2)+"s ("+group3(m.Scheduled)+" scheduled)")
		sent := group3(m.Sent) + " sent"
		if m.Skipped > 0 {
			sent += ", " + group3(m.Skipped) + " skipped (sender offline)"
		}
		row("sent", sent)
		row("acknowledged", group3(m.Acked), fmtRate(m.AckedPerS, "msg"))
		for _, k := range sortedKeys(m.Errors) {
			row("error: "+k, group3(m.Errors[k]))
		}
		if m.Duplicates > 0 {
			row("duplicate acks", group3(m.Duplicates))
		}
		if m.Unacked > 0 {
			row("unacknowledged", group3(m.Unacked))
		}
		if m.Lost+m.Unsent > 0 {
			row("lost with connection", group3(m.Lost)+" in flight, "+group3(m.Unsent)+" queued")
		}
		if r.Churn != nil {
			row("delivered live", group3(m.Delivered), fmtRate(m.DeliveredPerS, "delivery"))
		} else {
			row("delivered", group3(m.Delivered)+" of "+group3(m.ExpectedDeliveries)+" expected", fmtRate(m.DeliveredPerS, "delivery"))
		}
		if m.Missing > 0 {
			row("missing deliveries", group3(m.Missing))
		}
		if m.Extra > 0 {
			row("extra deliveries", group3(m.Extra))
		}
		row("latency", "p50", "p90", "p99", "p99.9", "max", "count")
		row("send → ack", latencyCells(m.AckLatency)...)
		row("send → delivery", latencyCells(m.DeliveryLatency)...)
		row("send lag (client)", latencyCells(m.SendLag)...)
		if l := m.ServerSendAck; l != nil && l.Count > 0 {
			row("send → ack (chatd)", serverCells(l)...)
		}
		if l := m.ServerCommit; l != nil && l.Count > 0 {
			row("group commit (chatd)", serverCells(l)...)
		}
		if tr := m.Trace; tr != nil {
			traceRows(tr, row, head)
		}
	}

	if h := r.HTTP; h != nil {
		head("http requests")
		row("answered ok", group3(h.OK)+" of "+group3(h.Requests), fmtRate(h.RatePerS, "req"))
		for _, k := range sortedKeys(h.Errors) {
			row("error: "+k, group3(h.Errors[k]))
		}
		row("latency", "p50", "p90", "p99", "p99.9", "max", "count")
		row("request", latencyCells(h.Latency)...)
	}

	if b := r.Broadcast; b != nil {
		head("broadcasts (to every user of the app)")
		row("users / online", group3(int64(b.Users))+" / "+group3(b.Online))
		for i := range b.AcceptMS {
			row("broadcast "+strconv.Itoa(i+1), "accepted in "+fmtFloat(b.AcceptMS[i], 1)+" ms",
				"delivered in "+fmtFloat(b.DeliverMS[i], 1)+" ms", fmtRate(b.DeliveriesPerS[i], "delivery"))
		}
		row("delivered", group3(b.Delivered)+" of "+group3(b.Expected))
		if b.DiskBytes >= 0 {
			row("disk growth", group3(b.DiskBytes)+" bytes (chat.db and WAL; they grow in chunks)")
		}
	}

	if sv := r.Service; sv != nil {
		head("customer service")
		row("shops, agents, customers", group3(int64(sv.Shops)), group3(int64(sv.Agents)), group3(int64(sv.Customers)))
		row("opens assigned", group3(sv.Assigned)+" (queued "+group3(sv.Queued)+")")
		for _, k := range sortedKeys(sv.Errors) {
			row("error: "+k, group3(sv.Errors[k]))
		}
		row("latency", "p50", "p90", "p99", "p99.9", "max", "count")
		row("open → assigned", latencyCells(sv.OpenToAssigned)...)
	}

	if ch := r.Churn; ch != nil {
		head("churn")
		row("reconnects", group3(ch.Reconnects))
		for _, k := range sortedKeys(ch.ReconnectFailures) {
			row("reconnect failed: "+k, group3(ch.ReconnectFailures[k]))
		}
		row("latency", "p50", "p90", "p99", "p99.9", "max", "count")
		row("close → logged in", latencyCells(ch.ReconnectLatency)...)
		row("sync calls", group3(ch.SyncCalls)+", "+group3(ch.SyncedMessages)+" messages, "+group3(ch.RecoveredBySync)+" recovered, "+group3(ch.SeenTwice)+" seen twice")
		row("sync latency", latencyCells(ch.SyncLatency)...)
		for _, k := range sortedKeys(ch.SyncErrors) {
			row("sync error: "+k, group3(ch.SyncErrors[k]))
		}
		row("missed messages", group3(ch.Missed)+" of "+group3(ch.Expected)+" (member, message) pairs")
	}

	s := r.Server
	head("server")
	if s.Error != "" {
		row("status", "unavailable: "+s.Error)
	} else {
		row("version", s.Version+" (pid "+strconv.Itoa(s.PID)+")")
		row("connections", strconv.Itoa(s.ConnsBefore)+" before, "+strconv.Itoa(s.ConnsPeak)+" at peak")
		if s.MemorySource != "" {
			before, peak := s.RSSBefore, s.RSSPeak
			if s.MemorySource == "heap_bytes" { // heap only: an underestimate
				before, peak = s.HeapBefore, s.HeapPeak
			}
			row("memory ("+s.MemorySource+")", fmtBytes(before)+" before, "+fmtBytes(peak)+" at peak")
		}
		if s.BytesPerConn != 0 {
			row("memory per connection", group3(s.BytesPerConn)+" bytes")
		}
	}
	cl := r.Client
	head("client (chatbench)")
	row("cpu", fmtFloat(cl.CPUSeconds, 2)+"s = "+fmtFloat(cl.CPUCores, 2)+" cores of "+strconv.Itoa(cl.GOMAXPROCS))
	if cl.LoadBefore > 0 || cl.LoadAfter > 0 {
		row("host load", fmtFloat(cl.LoadBefore, 2)+" before, "+fmtFloat(cl.LoadAfter, 2)+" after (1-minute average, "+strconv.Itoa(cl.NumCPU)+" CPUs)")
	}
	if h := r.HostStalls; h != nil && h.Wakes > 0 {
		row("host stalls", "a thread sleeping "+formatMicros(h.TickUS)+" woke ≥1ms late "+group3(h.Stalls1ms)+" times, ≥5ms "+
			group3(h.Stalls5ms)+" (longest "+formatMicros(h.Lateness.MaxUS)+", "+fmtFloat(h.StalledPct, 1)+"% of the run)")
	}
	if len(r.Notes) > 0 {
		head("notes")
		for _, n := range r.Notes {
			row("-", n)
		}
	}
	if len(r.Problems) > 0 {
		head("problems")
		for _, p := range r.Problems {
			row("-", p)
		}
	}
	return tw.Flush()
}

func latencyCells(l Latency) []string {
	if l.Count == 0 {
		return []string{"-", "-", "-", "-", "-", "0"}
	}
	return []string{formatMicros(l.P50US), formatMicros(l.P90US), formatMicros(l.P99US),
		formatMicros(l.P999US), formatMicros(l.MaxUS), group3(l.Count)}
}

// serverCells formats a server histogram's percentiles (no max).
func serverCells(l *ServerLatency) []string {
	f := func(us int64) string {
		if us < 0 {
			return "over"
		}
		return formatMicros(us)
	}
	return []string{f(l.P50US), f(l.P90US), f(l.P99US), f(l.P999US), "-", group3(l.Count)}
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func fmtFloat(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }

func fmtRate(f float64, unit string) string {
	return group3(int64(f+0.5)) + " " + unit + "/s"
}

func fmtBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmtFloat(float64(b)/(1<<30), 2) + " GiB"
	case b >= 1<<20:
		return fmtFloat(float64(b)/(1<<20), 1) + " MiB"
	case b >= 1<<10:
		return fmtFloat(float64(b)/(1<<10), 2) + " KiB"
	}
	return strconv.FormatUint(b, 10) + " B"
}

// paramsLine renders a scenario's parameters as "key value, …".
func paramsLine(p any) string {
	if p == nil {
		return ""
	}
	b, err := json.Marshal(p)
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		v, _ := json.Marshal(m[k])
		parts = append(parts, k+" "+strings.Trim(string(v), `"`))
	}
	return strings.Join(parts, ", ")
}

// compactSources renders consecutive IPv4 sources as ranges.
func compactSources(s []string) []string {
	if len(s) <= 2 {
		return s
	}
	return []string{s[0] + " … " + s[len(s)-1] + " (" + strconv.Itoa(len(s)) + ")"}
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// traceRows renders a TraceReport: each part of the delivery latency, then
// the total, with the parts' means over the slowest 1% and around the
// median.
func traceRows(tr *TraceReport, row func(string, ...string), head func(string)) {
	head("where the time went (--trace: " + group3(tr.Joined) + " deliveries joined, " + group3(tr.Untraced) + " untraced)")
	row("part", "p50", "p90", "p99", "p99.9", "slowest 1% (mean)", "median (mean)")
	for _, p := range append(slices.Clone(tr.Parts), tr.Total) {
		l := p.Latency
		if l.Count == 0 {
			continue
		}
		row(p.Name, formatMicros(l.P50US), formatMicros(l.P90US), formatMicros(l.P99US), formatMicros(l.P999US),
			formatMicros(int64(p.SlowestMeanUS)), formatMicros(int64(p.MedianMeanUS)))
	}
	if tr.File != "" {
		row("records", tr.File)
	}
}

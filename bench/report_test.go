package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	lat := Latency{Count: 10, MeanUS: 500, P50US: 400, P90US: 800, P99US: 1500, P999US: 1900, MaxUS: 2000}
	return &Report{
		Scenario: "p2p", Params: &P2P{Pairs: 10, Rate: 500}, Started: time.Unix(1_766_000_000, 0).UTC(),
		ElapsedS: 2.5, OK: false, Problems: []string{"3 of 1,000 expected deliveries did not arrive"},
		Options:   ReportOptions{WS: "ws://127.0.0.1:22886/", HTTP: "http://127.0.0.1:22887", Sources: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, DurationS: 2, Window: 256, Size: 32},
		Provision: ProvisionReport{App: "chatbench", UsersPushed: 20},
		Conns:     ConnReport{Attempted: 20, Connected: 20, RampS: 0.01, RatePerS: 2000, Latency: lat, Failures: map[string]int64{"dial: timeout": 1}},
		Messages: &MessageReport{OfferedRate: 500, SendS: 2, Scheduled: 1000, Sent: 1000, Acked: 1000, ExpectedDeliveries: 1000,
			Delivered: 997, Missing: 3, AckedPerS: 500, DeliveredPerS: 498.5, AckLatency: lat, DeliveryLatency: lat, SendLag: lat,
			Errors:        map[string]int64{"rate_limited": 2},
			ServerSendAck: &ServerLatency{Count: 1000, P50US: 310, P90US: 620, P99US: 1240, P999US: -1},
			ServerCommit:  &ServerLatency{Count: 400, P50US: 150, P90US: 300, P99US: 600, P999US: 900}},
		Server:     ServerReport{Version: "dev", PID: 42, ConnsPeak: 20, RSSBefore: 10 << 20, RSSPeak: 12 << 20, MemorySource: "rss_bytes", BytesPerConn: 1400},
		Client:     ClientReport{CPUSeconds: 0.5, CPUCores: 0.2, GOMAXPROCS: 2, Sockets: 20},
		HostStalls: &StallReport{TickUS: 1000, Wakes: 2500, Stalls1ms: 12, Stalls5ms: 2, StalledPct: 0.4, Lateness: Latency{Count: 2500, MaxUS: 6200}},
	}
}

func TestReportJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.HasSuffix(buf.String(), "\n") {
		t.Fatalf("want exactly one line, got %d newlines", n)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	// Every figure a consumer relies on, by path.
	paths := []string{
		"scenario", "params.pairs", "params.rate", "options.ws", "options.http", "options.sources", "options.duration_s",
		"options.window", "started", "elapsed_s", "ok", "problems", "interrupted", "deadline_hit",
		"provision.app", "provision.users_pushed",
		"conns.attempted", "conns.connected", "conns.failed", "conns.failures.dial: timeout", "conns.rate_per_s",
		"conns.latency.p50_us", "conns.latency.p99_us",
		"messages.offered_rate", "messages.sent", "messages.acked", "messages.errors.rate_limited", "messages.unacked",
		"messages.expected_deliveries", "messages.delivered", "messages.missing", "messages.acked_per_s", "messages.delivered_per_s",
		"messages.ack_latency.p50_us", "messages.ack_latency.p90_us", "messages.ack_latency.p99_us", "messages.ack_latency.p999_us",
		"messages.ack_latency.max_us", "messages.delivery_latency.p999_us", "messages.send_lag.p99_us",
		"messages.server_send_ack.p99_us", "messages.server_send_ack.count", "messages.server_commit.p50_us",
		"server.version", "server.rss_before", "server.rss_peak", "server.bytes_per_conn", "server.memory_source",
		"client.cpu_s", "client.cpu_cores", "client.gomaxprocs",
	}
	for _, p := range paths {
		var v any = m
		for _, k := range strings.SplitN(p, ".", 3) {
			obj, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v, ok = obj[k]
			if !ok {
				v = nil
				break
			}
		}
		if v == nil && p != "problems" {
			t.Errorf("JSON report lacks %s", p)
		}
	}
	if _, ok := m["churn"]; ok {
		t.Error("a p2p report carries a churn section")
	}
}

func TestReportTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"chatbench p2p: FAILED in 2.5s",
		"parameters  pairs 10, rate 500",
		"127.0.0.1 … 127.0.0.3 (3)",
		"failed: dial: timeout",
		"error: rate_limited",
		"997 of 1,000 expected",
		"send → delivery",
		"400µs", "1.50ms",
		"send → ack (chatd)", "1.24ms", "over",
		"group commit (chatd)", "900µs",
		"memory per connection",
		"1,400 bytes",
		"3 of 1,000 expected deliveries did not arrive",
		"host stalls", "woke ≥1ms late 12 times, ≥5ms 2 (longest 6.20ms, 0.4% of the run)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestReportNotes(t *testing.T) {
	tests := []struct {
		name   string
		client ClientReport
		lag    Latency
		ack    Latency
		stalls *StallReport
		want   []string
	}{
		{name: "quiet host, punctual client", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2, LoadBefore: 0.5, CPUCores: 0.3},
			lag: Latency{P99US: 300}, ack: Latency{P99US: 2000}},
		{name: "busy host", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2, LoadBefore: 5.9}, want: []string{"the host was busy before the run (load 5.9 on 2 CPUs)"}},
		{name: "client out of CPU", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2, CPUCores: 1.9}, want: []string{"chatbench used 1.90 of its 2 cores"}},
		{name: "client behind schedule", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2},
			lag: Latency{P99US: 116_000}, ack: Latency{P99US: 306_000}, want: []string{"send lag p99 116.0ms, ack p99 306.0ms"}},
		{name: "small lag under a slow server is not a note", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2},
			lag: Latency{P99US: 2000}, ack: Latency{P99US: 300_000}},
		{name: "short stalls are not a note", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2},
			stalls: &StallReport{TickUS: 1000, Wakes: 9000, Stalls1ms: 40, Long: 3}},
		{name: "host stalls", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2},
			stalls: &StallReport{TickUS: 1000, Wakes: 9000, Stalls1ms: 40, Stalls5ms: 7, Long: 20, Aligned: 4, Lateness: Latency{MaxUS: 9100}},
			want:   []string{"woke 5 ms or more late 7 times (longest 9.10ms); latencies that long"}},
		{name: "host stalls on a quota", client: ClientReport{NumCPU: 2, GOMAXPROCS: 2},
			stalls: &StallReport{TickUS: 1000, Wakes: 9000, Stalls1ms: 40, Stalls5ms: 7, Long: 20, Aligned: 18, Lateness: Latency{MaxUS: 9100}},
			want:   []string{"18 of its 20 stalls of 2 ms or more ended at the same point of a 100 ms cycle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Client: tt.client, Messages: &MessageReport{SendLag: tt.lag, AckLatency: tt.ack}, HostStalls: tt.stalls}
			r.addNotes()
			if len(r.Notes) != len(tt.want) {
				t.Fatalf("notes %q, want %d", r.Notes, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(r.Notes[i], w) {
					t.Errorf("note %q lacks %q", r.Notes[i], w)
				}
			}
		})
	}
}

package main

import (
	"testing"

	"chatd/internal/metrics"
	"chatd/internal/metrics/metricstest"
	"chatd/reactor"
)

func TestWriteWSMetrics(t *testing.T) {
	st := reactor.Stats{
		Conns: 11, Opened: 12, Refused: 13,
		ClosedHandshakeTimeout: 21, HandshakeFailures: 22, ClosedIdle: 23, ClosedSlow: 24,
		ClosedProtocol: 25, ClosedPeer: 26, ClosedServer: 27,
		BytesIn: 31, BytesOut: 32, FramesIn: 33, FramesOut: 34, Handshakes: 35, PeakOutbound: 36, FramesCompressed: 37, Deflates: 38, FramesDirect: 39,
	}
	var w metrics.Writer
	writeWSMetrics(&w, st)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	fams, err := metricstest.Parse(w.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Bytes())
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{name: "chatd_ws_connections", want: 11},
		{name: "chatd_ws_connections_opened_total", want: 12},
		{name: "chatd_ws_connections_refused_total", want: 13},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "handshake_timeout"}, want: 21},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "handshake_failed"}, want: 22},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "idle"}, want: 23},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "slow"}, want: 24},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "protocol"}, want: 25},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "peer"}, want: 26},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "server"}, want: 27},
		{name: "chatd_handshake_failures_total", want: 22},
		{name: "chatd_ws_bytes_in_total", want: 31},
		{name: "chatd_ws_bytes_out_total", want: 32},
		{name: "chatd_ws_frames_in_total", want: 33},
		{name: "chatd_ws_frames_out_total", want: 34},
		{name: "chatd_ws_handshakes_total", want: 35},
		{name: "chatd_ws_peak_outbound_bytes", want: 36},
		{name: "chatd_ws_frames_compressed_total", want: 37},
		{name: "chatd_ws_deflates_total", want: 38},
		{name: "chatd_ws_frames_direct_total", want: 39},
	}
	for _, tc := range tests {
		if got, ok := fams.Value(tc.name, tc.labels...); !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if n := len(fams["chatd_ws_connections_closed_total"].Samples); n != len(closeReasons) {
		t.Errorf("%d close reasons, want %d", n, len(closeReasons))
	}
	tr := transportFigures(st)
	if tr.Conns != 11 || tr.BytesIn != 31 || tr.BytesOut != 32 {
		t.Errorf("transport figures %+v", tr)
	}
}

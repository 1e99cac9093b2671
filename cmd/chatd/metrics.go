package main

import (
	"chatd/internal/metrics"
	"chatd/reactor"
)

// closeReason is one value of chatd_ws_connections_closed_total's reason
// label and the reactor counter behind it.
type closeReason struct {
	label string
	n     func(*reactor.Stats) uint64
}

var closeReasons = []closeReason{
	{"handshake_timeout", func(s *reactor.Stats) uint64 { return s.ClosedHandshakeTimeout }},
	{"handshake_failed", func(s *reactor.Stats) uint64 { return s.HandshakeFailures }},
	{"idle", func(s *reactor.Stats) uint64 { return s.ClosedIdle }},
	{"slow", func(s *reactor.Stats) uint64 { return s.ClosedSlow }},
	{"protocol", func(s *reactor.Stats) uint64 { return s.ClosedProtocol }},
	{"peer", func(s *reactor.Stats) uint64 { return s.ClosedPeer }},
	{"server", func(s *reactor.Stats) uint64 { return s.ClosedServer }},
}

// writeWSMetrics writes the WebSocket listener's families (the HTTP API
// writes the rest of GET /metrics).
func writeWSMetrics(w *metrics.Writer, st reactor.Stats) {
	w.Gauge("chatd_ws_connections", "WebSocket connections held now (handshaking, open or closing).", float64(st.Conns))
	w.Counter("chatd_ws_connections_opened_total", "WebSocket connections accepted under the connection cap.", float64(st.Opened))
	if w.Family("chatd_ws_connections_closed_total", metrics.Counter, "Accepted WebSocket connections since closed, by reason.") {
		for _, r := range closeReasons {
			w.Sample(float64(r.n(&st)), metrics.Label{Name: "reason", Value: r.label})
		}
	}
	w.Counter("chatd_ws_connections_refused_total", "Connections refused because of max_conns or shutdown (HTTP 503).", float64(st.Refused))
	w.Counter("chatd_ws_handshakes_total", "Successful WebSocket upgrades.", float64(st.Handshakes))
	w.Counter("chatd_handshake_failures_total", "Rejected WebSocket upgrade requests.", float64(st.HandshakeFailures))
	w.Counter("chatd_ws_bytes_in_total", "Bytes read from WebSocket connections, handshakes included.", float64(st.BytesIn))
	w.Counter("chatd_ws_bytes_out_total", "WebSocket frame bytes written (handshake responses excluded).", float64(st.BytesOut))
	w.Counter("chatd_ws_frames_in_total", "WebSocket frames read, control frames and fragments included.", float64(st.FramesIn))
	w.Counter("chatd_ws_frames_out_total", "WebSocket frames written, control frames included.", float64(st.FramesOut))
	w.Counter("chatd_ws_frames_compressed_total", "Frames sent compressed (permessage-deflate).", float64(st.FramesCompressed))
	w.Counter("chatd_ws_frames_direct_total", "Frames the journal wrote straight to an idle socket instead of waking its event loop.", float64(st.FramesDirect))
	w.Counter("chatd_ws_deflates_total", "Payloads compressed; a broadcast is compressed once for all its recipients.", float64(st.Deflates))
	w.Gauge("chatd_ws_peak_outbound_bytes", "Largest outbound backlog held for one connection since start (capped by max_outbound).", float64(st.PeakOutbound))
}

// transportFigures is the WebSocket listener's share of serverInfo.
func transportFigures(st reactor.Stats) metrics.Transport {
	return metrics.Transport{Conns: int(st.Conns), BytesIn: st.BytesIn, BytesOut: st.BytesOut}
}

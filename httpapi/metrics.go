package httpapi

import (
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"chatd/chat"
	"chatd/internal/metrics"
)

// errLocalOnly answers /metrics from a non-loopback client.
var errLocalOnly = chat.Errf(chat.CodeForbidden, "metrics are loopback-only (admin_from_anywhere serves them to other hosts)")

// statusClasses are the label values of chatd_http_requests_total, by
// status / 100.
var statusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// httpCounters counts answered requests by status class. Atomics: any
// request goroutine adds, a scrape reads.
type httpCounters struct {
	byClass [6]atomic.Uint64 // index: status / 100; 0 for anything outside 100-599
}

// count records the answer of one request; deferred by serveHTTP.
func (h *httpCounters) count(ctx *fasthttp.RequestCtx) {
	i := ctx.Response.StatusCode() / 100
	if i < 1 || i > 5 {
		i = 0
	}
	h.byClass[i].Add(1)
}

// metrics answers GET /metrics in the Prometheus text format.
func (s *Server) metrics(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	var w metrics.Writer
	s.writeMetrics(&w)
	if err := w.Err(); err != nil {
		// A bug in a family's definition: the rest is still served.
		s.log.Error().Err(err).Msg("http api: metrics family left out")
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentType(metrics.ContentType)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.SetBodyRaw(w.Bytes())
	return nil
}

// writeMetrics writes every family: the core's, the journal's, the live
// stream's, the HTTP API's, then Config.Metrics (the WebSocket
// listener's), the Go runtime's and the process's.
func (s *Server) writeMetrics(w *metrics.Writer) {
	if w.Family("chatd_info", metrics.Gauge, "Always 1; the label carries the server version.") {
		w.Sample(1, metrics.Label{Name: "version", Value: s.cfg.Version})
	}
	cs := s.core.Stats()
	w.Gauge("chatd_clients", "Connections attached to the core, logged in or not (WebSocket and HTTP long-poll).", float64(cs.Clients))
	w.Gauge("chatd_clients_logged_in", "Connections that have logged in.", float64(cs.Online))
	w.Gauge("chatd_users_online", "Distinct users with at least one logged-in connection.", float64(cs.UsersOnline))
	w.Counter("chatd_logins_total", "Successful logins.", float64(cs.Logins))
	w.Counter("chatd_login_failures_total", "Failed logins (bad, expired or revoked token, unknown app).", float64(cs.LoginFailures))
	w.Counter("chatd_messages_received_total", "Messages accepted and durable (duplicates of a retried send not counted).", float64(cs.MessagesIn))
	w.Counter("chatd_deliveries_total", "Message events queued to recipients' connections.", float64(cs.Deliveries))
	w.Counter("chatd_deliveries_dropped_total", "Events a connection refused because its outbound queue was full (slow consumer).", float64(cs.Dropped))
	w.Gauge("chatd_journal_depth", "Writes waiting for the group-commit journal.", float64(cs.JournalDepth))
	w.Gauge("chatd_message_trace_running", "1 while GET /debug/msgtrace is tracing messages, else 0.", b2f(cs.Tracing))
	w.Counter("chatd_store_commits_total", "Group commits (one store transaction and fsync each).", float64(cs.Commits))
	sh := s.core.StoreHistograms()
	w.Histogram("chatd_store_batch_size", "Writes committed together in one group commit.", metrics.HistogramData(sh.BatchSize))
	w.Histogram("chatd_store_commit_seconds", "Duration of one group commit's store transaction, fsync included.", metrics.HistogramData(sh.CommitSeconds))
	w.Histogram("chatd_send_ack_seconds", "Per message sent by a client: from its decoding to its acknowledgement being queued (journal wait, commit and fsync included; the socket write not).", metrics.HistogramData(sh.SendAckSeconds))
	if w.Family("chatd_errors_total", metrics.Counter, "Errors answered to clients, by code.") {
		for _, code := range chat.Codes {
			w.Sample(float64(cs.Errors[code]), metrics.Label{Name: "code", Value: string(code)})
		}
	}
	if w.Family("chatd_limited_total", metrics.Counter, "Requests and logins refused by an abuse limit, by limit (send, request, user_conns, app_users, app_groups).") {
		for _, k := range chat.LimitKinds {
			w.Sample(float64(cs.Limited[k]), metrics.Label{Name: "limit", Value: k})
		}
	}
	ws := s.core.WebhookStats()
	w.Counter("chatd_webhook_deliveries_total", "Webhook deliveries answered 2xx.", float64(ws.Delivered))
	w.Counter("chatd_webhook_failures_total", "Webhook deliveries given up after webhook_retry_for (marked failed).", float64(ws.Failed))
	w.Counter("chatd_webhook_attempts_total", "Webhook HTTP attempts.", float64(ws.Attempts))
	w.Counter("chatd_webhook_retries_total", "Webhook attempts that failed and were scheduled again.", float64(ws.Retries))
	w.Counter("chatd_webhook_dropped_total", "Webhook events not written because the outbox was full (webhook_outbox_max).", float64(ws.Dropped))
	w.Gauge("chatd_webhook_outbox_depth", "Webhook events not yet fanned out plus deliveries pending.", float64(ws.Depth))
	w.Histogram("chatd_webhook_attempt_seconds", "Duration of one webhook HTTP attempt.", metrics.HistogramData(ws.Latency))
	w.Counter("chatd_before_send_calls_total", "Before-send hook calls.", float64(ws.HookCalls))
	if w.Family("chatd_before_send_outcomes_total", metrics.Counter, "Before-send hook calls by outcome other than allow: rejected, rewritten, fallback (timed out or failed; on_timeout applied).") {
		w.Sample(float64(ws.HookRejected), metrics.Label{Name: "outcome", Value: "rejected"})
		w.Sample(float64(ws.HookRewritten), metrics.Label{Name: "outcome", Value: "rewritten"})
		w.Sample(float64(ws.HookFallbacks), metrics.Label{Name: "outcome", Value: "fallback"})
	}
	w.Histogram("chatd_before_send_seconds", "Duration of one before-send hook call (what it adds to a send).", metrics.HistogramData(ws.HookLatency))
	w.Gauge("chatd_subscribers", "Live event-stream subscriptions (chatctl subscribe and other /admin/v1/subscribe clients).", float64(s.core.Subscribers()))
	w.Counter("chatd_subscriber_events_dropped_total", "Events dropped for live-stream subscribers too slow to take them.", float64(s.streams.dropped.Load()))
	if w.Family("chatd_http_requests_total", metrics.Counter, "HTTP API requests answered, by status class (live streams count once, when they start).") {
		for i := 1; i < len(statusClasses); i++ {
			w.Sample(float64(s.requests.byClass[i].Load()), metrics.Label{Name: "class", Value: statusClasses[i]})
		}
		if n := s.requests.byClass[0].Load(); n > 0 {
			w.Sample(float64(n), metrics.Label{Name: "class", Value: statusClasses[0]})
		}
	}
	if w.Family("chatd_http_connections", metrics.Gauge, "Open HTTP API connections by lane: general (http_max_conns) and reserved (http_reserved_conns, for http_reserved_peers when the general lane is full).") {
		g, r := s.admission.inUse()
		w.Sample(float64(g), metrics.Label{Name: "lane", Value: "general"})
		w.Sample(float64(r), metrics.Label{Name: "lane", Value: "reserved"})
	}
	if w.Family("chatd_http_connections_refused_total", metrics.Counter, "HTTP API connections refused on accept: per_ip (429, over http_conns_per_ip) or busy (503, no slot free).") {
		w.Sample(float64(s.admission.refusedPerIP.Load()), metrics.Label{Name: "reason", Value: "per_ip"})
		w.Sample(float64(s.admission.refusedBusy.Load()), metrics.Label{Name: "reason", Value: "busy"})
	}
	w.Gauge("chatd_http_polls_waiting", "Waiting long-polls and open user event streams (GET /v1/events, /v1/events/stream; capped by http_max_polls).", float64(s.polls.active.Load()))
	w.Counter("chatd_http_polls_refused_total", "Long-polls and user event streams refused 503 over http_max_polls.", float64(s.polls.refused.Load()))
	w.Gauge("chatd_http_event_devices", "Users with an HTTP event buffer (a long-poll, stream or recv within http_events_keep).", float64(s.core.HTTPDevices()))
	w.Gauge("chatd_http_uploads_in_progress", "Uploads whose body is being received (capped by upload_concurrent).", float64(s.uploads.Load()))
	w.Counter("chatd_http_uploads_total", "Uploads stored (a duplicate of a stored file included).", float64(s.uploadsDone.Load()))
	if s.core.Blobs() != nil && w.Family("chatd_http_file_fetches_total", metrics.Counter, "Files this cluster node served after copying them from the database into its uploads folder (blobs.go): fetched, or failed (the database's error, or bytes that do not hash to the file's id).") {
		w.Sample(float64(s.blobs.fetched.Load()), metrics.Label{Name: "result", Value: "fetched"})
		w.Sample(float64(s.blobs.failed.Load()), metrics.Label{Name: "result", Value: "failed"})
	}
	if w.Family("chatd_http_forwarded_total", metrics.Counter, "Host calls forwarded between cluster nodes to a lease's holder (forward.go): sent (answered by the holder), served (for another node), failed (answered 413 or 503 here).") {
		w.Sample(float64(s.fwd.sent.Load()), metrics.Label{Name: "way", Value: "sent"})
		w.Sample(float64(s.fwd.served.Load()), metrics.Label{Name: "way", Value: "served"})
		w.Sample(float64(s.fwd.failed.Load()), metrics.Label{Name: "way", Value: "failed"})
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics(w)
	}
	metrics.WriteRuntime(w)
	metrics.WriteProcess(w)
}

// b2f is a boolean gauge's value.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Package bench is the load generator behind chatbench. It talks to a chatd
// server only over the wire, the way real clients do: WebSocket clients that
// upgrade, log in and send JSON actions, and the signed HTTP API for
// provisioning (an app, users, tokens, groups) and for the http scenario.
//
// A run is one Scenario (connect, p2p, group, churn or http) given to Run
// with the shared Options. Run provisions what the scenario needs (reusing
// what an earlier run recorded in the state file), ramps the connections,
// drives the traffic open-loop at the intended rate, drains, and returns a
// Report: every figure plus the parameters used, printable as a table
// (Report.WriteTable) or as one JSON line.
//
// Measurement rules:
//
//   - Latencies are recorded in HDR histograms (1 µs to 100 s, three
//     significant digits) and reported as p50, p90, p99, p99.9 and max.
//   - Sends are open-loop: a pacer computes each message's intended send
//     time from the rate, and every latency is measured from that intended
//     time, so a stalled server or a backed-up client shows up in the
//     latency instead of silently lowering the offered rate (no coordinated
//     omission). The send lag (actual write time minus intended time) is
//     reported separately so a client-side bottleneck is visible.
//   - The server's share: before the schedule and after the drain,
//     chatbench reads chatd's chatd_send_ack_seconds and
//     chatd_store_commit_seconds histograms from /metrics (served to
//     loopback clients) and reports the percentiles of the difference,
//     interpolated within the buckets (servermetrics.go). Another server,
//     or a remote chatd, gets a note instead.
//   - Each message carries its intended send time in its content
//     ({"t":nanoseconds,"text":"…"}) on the run's monotonic clock; the
//     receiving client (the same process) computes delivery latency from
//     it.
//   - Counts must add up: every sent message acknowledged, every
//     acknowledged message delivered to every online member, and in churn
//     every message seen live or by sync after a reconnect. A run whose
//     counts do not add up reports the problem and is not OK.
//
// Ownership: a Run owns everything it creates. In p2p, group, churn and
// http (and connect with --portable or off Linux) each client connection
// has one reader goroutine (the only reader of its socket and read buffer)
// and a mutex guarding its write side. The Linux connect scenario instead
// runs one epoll loop per core (fastconnect_linux.go): each loop alone owns
// its connections' sockets, buffers and state, from dial to close, so the
// load generator's cost per connection stays well below the server's.
// Counters shared across goroutines are atomics; histograms are sharded,
// each shard behind its own mutex.
package bench

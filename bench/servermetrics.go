package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The server's own latency figures for a run: chatbench reads two
// histograms from chatd's /metrics (Prometheus text) before the schedule
// starts and after the drain, and reports the percentiles of the
// difference, so that a report splits send → delivery into the server's
// share and the rest (the client, the kernel, the network).
const (
	metricSendAck = "chatd_send_ack_seconds"     // a WebSocket send decoded → its ack queued
	metricCommit  = "chatd_store_commit_seconds" // one group commit (write and fsync)
)

// ServerLatency is one server histogram over the run. Percentiles are
// interpolated linearly within the histogram's buckets, as Prometheus'
// histogram_quantile does; -1 means beyond the largest finite bucket.
type ServerLatency struct {
	Count  int64 `json:"count"`
	P50US  int64 `json:"p50_us"`
	P90US  int64 `json:"p90_us"`
	P99US  int64 `json:"p99_us"`
	P999US int64 `json:"p999_us"`
}

// promHist is one cumulative Prometheus histogram: counts[i] observations
// were at most bounds[i] (seconds); the last bound is +Inf.
type promHist struct {
	bounds []float64
	counts []float64
}

// parsePromHists reads the named histograms' _bucket lines from r.
// Histograms that are absent, or whose buckets are not ascending and
// ending in +Inf, are left out.
func parsePromHists(r io.Reader, names ...string) map[string]promHist {
	out := make(map[string]promHist, len(names))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			rest, ok := strings.CutPrefix(line, n+`_bucket{le="`)
			if !ok {
				continue
			}
			le, val, ok := strings.Cut(rest, `"} `)
			if !ok {
				break
			}
			b, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
			c, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err1 != nil || err2 != nil {
				break
			}
			h := out[n]
			h.bounds = append(h.bounds, b)
			h.counts = append(h.counts, c)
			out[n] = h
			break
		}
	}
	for n, h := range out {
		if !h.valid() {
			delete(out, n)
		}
	}
	return out
}

func (h promHist) valid() bool {
	k := len(h.bounds)
	if k == 0 || !math.IsInf(h.bounds[k-1], 1) {
		return false
	}
	for i := 1; i < k; i++ {
		if h.bounds[i] <= h.bounds[i-1] || h.counts[i] < h.counts[i-1] {
			return false
		}
	}
	return true
}

// since returns h minus before (the observations made in between), or
// false when the two do not have the same buckets or before is not
// earlier (the server restarted).
func (h promHist) since(before promHist) (promHist, bool) {
	if len(before.bounds) != len(h.bounds) {
		return promHist{}, false
	}
	d := promHist{bounds: h.bounds, counts: make([]float64, len(h.counts))}
	for i := range h.counts {
		if before.bounds[i] != h.bounds[i] || h.counts[i] < before.counts[i] {
			return promHist{}, false
		}
		d.counts[i] = h.counts[i] - before.counts[i]
	}
	return d, true
}

// quantile is the q-quantile (0 < q < 1) in seconds, interpolated
// linearly within its bucket (the first bucket starts at 0); +Inf when it
// lies beyond the largest finite bound; NaN for an empty histogram.
func (h promHist) quantile(q float64) float64 {
	total := h.counts[len(h.counts)-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank {
			if math.IsInf(h.bounds[i], 1) {
				return math.Inf(1)
			}
			if c == below {
				return h.bounds[i]
			}
			return lower + (h.bounds[i]-lower)*(rank-below)/(c-below)
		}
		lower, below = h.bounds[i], c
	}
	return math.Inf(1)
}

// summary turns h into a ServerLatency.
func (h promHist) summary() *ServerLatency {
	us := func(q float64) int64 {
		v := h.quantile(q)
		if math.IsInf(v, 1) || math.IsNaN(v) {
			return -1
		}
		return int64(math.Round(v * 1e6))
	}
	return &ServerLatency{Count: int64(h.counts[len(h.counts)-1]),
		P50US: us(0.5), P90US: us(0.9), P99US: us(0.99), P999US: us(0.999)}
}

// getServer GETs path from the server's HTTP API with hc (unsigned: the
// loopback-only /metrics and /debug endpoints) and returns the body of a
// 200 answer, or an error naming the status. The caller closes the body.
func (e *env) getServer(ctx context.Context, hc *http.Client, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(e.api.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		p, _, _ := strings.Cut(path, "?")
		return nil, errors.New("GET " + p + ": HTTP " + strconv.Itoa(resp.StatusCode))
	}
	return resp.Body, nil
}

// scrapeServer reads the server's histograms, or returns an error (not
// chatd, an old chatd, /metrics refused to a remote client).
func (e *env) scrapeServer(ctx context.Context) (map[string]promHist, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, err := e.getServer(ctx, e.api.HTTP, "/metrics")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	hs := parsePromHists(body, metricSendAck, metricCommit)
	if len(hs) == 0 {
		return nil, errors.New("/metrics has no " + metricSendAck + " or " + metricCommit)
	}
	return hs, nil
}

// markServer takes the "before" reading of the server's histograms, just
// before a schedule starts. A failure is noted once, at the end.
func (e *env) markServer() {
	e.srvBefore, e.srvErr = e.scrapeServer(context.WithoutCancel(e.ctx))
}

// serverLatencies fills m's server figures from a reading taken now and
// the one markServer took.
func (e *env) serverLatencies(m *MessageReport) {
	if e.srvErr == nil && e.srvBefore != nil {
		var after map[string]promHist
		after, e.srvErr = e.scrapeServer(context.WithoutCancel(e.ctx))
		for name, dst := range map[string]**ServerLatency{metricSendAck: &m.ServerSendAck, metricCommit: &m.ServerCommit} {
			if d, ok := after[name].since(e.srvBefore[name]); ok && after[name].valid() && e.srvBefore[name].valid() {
				*dst = d.summary()
			}
		}
	}
	if e.srvErr != nil {
		e.rep.Notes = append(e.rep.Notes, "no server-side latency figures: "+e.srvErr.Error())
	}
}

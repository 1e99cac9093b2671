package bench

import (
	"math"
	"strings"
	"testing"
)

const promSample = `# HELP chatd_send_ack_seconds x
# TYPE chatd_send_ack_seconds histogram
chatd_send_ack_seconds_bucket{le="0.001"} 10
chatd_send_ack_seconds_bucket{le="0.002"} 50
chatd_send_ack_seconds_bucket{le="0.004"} 90
chatd_send_ack_seconds_bucket{le="+Inf"} 100
chatd_send_ack_seconds_sum 0.2
chatd_send_ack_seconds_count 100
chatd_store_commit_seconds_bucket{le="0.001"} 3
chatd_store_commit_seconds_bucket{le="0.0005"} 4
chatd_store_commit_seconds_bucket{le="+Inf"} 4
chatd_other_bucket{le="1"} 7
`

func TestParsePromHists(t *testing.T) {
	hs := parsePromHists(strings.NewReader(promSample), metricSendAck, metricCommit, "chatd_missing")
	h, ok := hs[metricSendAck]
	if !ok || len(h.bounds) != 4 || !math.IsInf(h.bounds[3], 1) || h.counts[1] != 50 {
		t.Fatalf("send_ack parsed as %+v", h)
	}
	if _, ok := hs[metricCommit]; ok {
		t.Error("a histogram with descending bounds was kept")
	}
	if _, ok := hs["chatd_missing"]; ok {
		t.Error("an absent histogram was reported")
	}
	if _, ok := parsePromHists(strings.NewReader(`x_bucket{le="1"} 3`+"\n"), "x")["x"]; ok {
		t.Error("a histogram without +Inf was kept")
	}
}

func TestPromQuantiles(t *testing.T) {
	before := promHist{bounds: []float64{0.001, 0.002, 0.004, math.Inf(1)}, counts: []float64{5, 5, 5, 5}}
	after := promHist{bounds: before.bounds, counts: []float64{15, 55, 95, 105}}
	d, ok := after.since(before)
	if !ok {
		t.Fatal("since refused matching histograms")
	}
	// 100 observations: 10 ≤ 1 ms, 40 in (1, 2], 40 in (2, 4], 10 above.
	for _, tc := range []struct {
		q    float64
		want float64
	}{
		{0.05, 0.0005}, // half way through the first bucket, which starts at 0
		{0.5, 0.002},   // the end of the second
		{0.7, 0.003},   // half way through the third
		{0.9, 0.004},   // its end
		{0.99, math.Inf(1)},
	} {
		if got := d.quantile(tc.q); math.Abs(got-tc.want) > 1e-12 && !(math.IsInf(got, 1) && math.IsInf(tc.want, 1)) {
			t.Errorf("q%.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	s := d.summary()
	if s.Count != 100 || s.P50US != 2000 || s.P90US != 4000 || s.P99US != -1 || s.P999US != -1 {
		t.Errorf("summary %+v", s)
	}
	if _, ok := before.since(after); ok {
		t.Error("since accepted counts that went down (a restarted server)")
	}
	other := promHist{bounds: []float64{0.001, math.Inf(1)}, counts: []float64{1, 2}}
	if _, ok := after.since(other); ok {
		t.Error("since accepted different buckets")
	}
	if !math.IsNaN((promHist{bounds: []float64{math.Inf(1)}, counts: []float64{0}}).quantile(0.5)) {
		t.Error("an empty histogram has a quantile")
	}
}

package metrics_test

import (
	"math"
	"strings"
	"testing"

	"chatd/internal/metrics"
	"chatd/internal/metrics/metricstest"
)

func TestWriterGolden(t *testing.T) {
	var w metrics.Writer
	w.Counter("chatd_logins_total", "Successful logins.", 3)
	w.Gauge("chatd_temperature", "A gauge with a\nnewline and a \\ backslash in its help.", -1.5)
	if w.Family("chatd_errors_total", metrics.Counter, "Errors by code.") {
		w.Sample(0, metrics.Label{Name: "code", Value: "bad_request"})
		w.Sample(7, metrics.Label{Name: "code", Value: `odd "quoted" \ value` + "\n"})
	}
	w.Histogram("chatd_store_commit_seconds", "Commit duration.", metrics.HistogramData{
		Bounds: []float64{0.0005, 0.001, 2.5}, Counts: []uint64{1, 3, 3}, Count: 4, Sum: 12.25,
	})
	w.Gauge("chatd_big", "Large integers print without an exponent.", 123456789012)
	w.Gauge("chatd_inf", "Infinity.", math.Inf(1))
	want := `# HELP chatd_logins_total Successful logins.
# TYPE chatd_logins_total counter
chatd_logins_total 3
# HELP chatd_temperature A gauge with a\nnewline and a \\ backslash in its help.
# TYPE chatd_temperature gauge
chatd_temperature -1.5
# HELP chatd_errors_total Errors by code.
# TYPE chatd_errors_total counter
chatd_errors_total{code="bad_request"} 0
chatd_errors_total{code="odd \"quoted\" \\ value\n"} 7
# HELP chatd_store_commit_seconds Commit duration.
# TYPE chatd_store_commit_seconds histogram
chatd_store_commit_seconds_bucket{le="0.0005"} 1
chatd_store_commit_seconds_bucket{le="0.001"} 3
chatd_store_commit_seconds_bucket{le="2.5"} 3
chatd_store_commit_seconds_bucket{le="+Inf"} 4
chatd_store_commit_seconds_sum 12.25
chatd_store_commit_seconds_count 4
# HELP chatd_big Large integers print without an exponent.
# TYPE chatd_big gauge
chatd_big 123456789012
# HELP chatd_inf Infinity.
# TYPE chatd_inf gauge
chatd_inf +Inf
`
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if got := string(w.Bytes()); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	fams, err := metricstest.Parse(w.Bytes())
	if err != nil {
		t.Fatalf("parse back: %v", err)
	}
	if v, ok := fams.Value("chatd_errors_total", "code", "odd \"quoted\" \\ value\n"); !ok || v != 7 {
		t.Fatalf("escaped label round trip: %v %v", v, ok)
	}
	if fams["chatd_temperature"].Help != "A gauge with a\nnewline and a \\ backslash in its help." {
		t.Fatalf("help round trip: %q", fams["chatd_temperature"].Help)
	}
}

func TestWriterRefusesBadFamilies(t *testing.T) {
	tests := []struct {
		name    string
		write   func(w *metrics.Writer)
		wantErr string
	}{
		{name: "counter without _total", write: func(w *metrics.Writer) { w.Counter("chatd_logins", "x", 1) }, wantErr: "must end in _total"},
		{name: "invalid name", write: func(w *metrics.Writer) { w.Gauge("chatd-bad", "x", 1) }, wantErr: "invalid metric name"},
		{name: "name starting with a digit", write: func(w *metrics.Writer) { w.Gauge("1chatd", "x", 1) }, wantErr: "invalid metric name"},
		{name: "duplicate family", write: func(w *metrics.Writer) { w.Gauge("chatd_x", "x", 1); w.Gauge("chatd_x", "x", 2) }, wantErr: "written twice"},
		{name: "negative counter", write: func(w *metrics.Writer) { w.Counter("chatd_x_total", "x", -1) }, wantErr: "counter value -1"},
		{name: "reserved label le", write: func(w *metrics.Writer) {
			w.Family("chatd_x", metrics.Gauge, "x")
			w.Sample(1, metrics.Label{Name: "le", Value: "1"})
		}, wantErr: "invalid label name"},
		{name: "histogram not cumulative", write: func(w *metrics.Writer) {
			w.Histogram("chatd_h", "x", metrics.HistogramData{Bounds: []float64{1, 2}, Counts: []uint64{3, 2}, Count: 3})
		}, wantErr: "cumulative"},
		{name: "histogram bounds not ascending", write: func(w *metrics.Writer) {
			w.Histogram("chatd_h", "x", metrics.HistogramData{Bounds: []float64{2, 1}, Counts: []uint64{1, 1}, Count: 1})
		}, wantErr: "ascending"},
		{name: "histogram count below last bucket", write: func(w *metrics.Writer) {
			w.Histogram("chatd_h", "x", metrics.HistogramData{Bounds: []float64{1}, Counts: []uint64{5}, Count: 4})
		}, wantErr: "count below"},
		{name: "histogram family through Family", write: func(w *metrics.Writer) {
			w.Family("chatd_h", metrics.Histogram, "x")
			w.Sample(1)
		}, wantErr: "use Histogram"},
		{name: "unknown type", write: func(w *metrics.Writer) { w.Family("chatd_x", "summary", "x") }, wantErr: "unknown type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w metrics.Writer
			w.Gauge("chatd_ok", "Written before the bad family.", 1)
			tc.write(&w)
			w.Gauge("chatd_after", "Written after the bad family.", 2)
			if w.Err() == nil || !strings.Contains(w.Err().Error(), tc.wantErr) {
				t.Fatalf("Err() = %v, want it to mention %q", w.Err(), tc.wantErr)
			}
			fams, err := metricstest.Parse(w.Bytes())
			if err != nil {
				t.Fatalf("output with a refused family is not valid: %v\n%s", err, w.Bytes())
			}
			for _, name := range []string{"chatd_ok", "chatd_after"} {
				if _, ok := fams.Value(name); !ok {
					t.Fatalf("%s missing: the good families must still be written:\n%s", name, w.Bytes())
				}
			}
		})
	}
}

func TestRuntimeAndProcessFamilies(t *testing.T) {
	var w metrics.Writer
	metrics.WriteRuntime(&w)
	metrics.WriteProcess(&w)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	fams, err := metricstest.Parse(w.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Bytes())
	}
	positive := []string{"go_goroutines", "go_threads", "go_gomaxprocs", "go_memstats_heap_alloc_bytes",
		"go_memstats_heap_inuse_bytes", "go_memstats_heap_sys_bytes", "go_memstats_sys_bytes",
		"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes",
		"process_resident_memory_bytes", "process_start_time_seconds"}
	for _, name := range positive {
		if v, ok := fams.Value(name); !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want > 0", name, v, ok)
		}
	}
	for _, name := range []string{"go_memstats_alloc_bytes_total", "go_gc_cycles_total", "go_gc_pause_seconds_total", "go_gc_last_pause_seconds"} {
		if _, ok := fams.Value(name); !ok {
			t.Errorf("%s missing", name)
		}
	}
	if _, ok := fams.Value("go_info", "version", ""); ok {
		t.Error("go_info has an empty version")
	}
}

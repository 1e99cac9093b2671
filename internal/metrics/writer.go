// Package metrics writes chatd's figures in the Prometheus text exposition
// format (version 0.0.4) without a client library: a Writer that appends
// families to a buffer, the Go runtime and process families, and the
// publisher of the live stream's periodic serverInfo event.
//
// The text format, in short: each family is a "# HELP name text" line, a
// "# TYPE name counter|gauge|histogram" line and its samples
// ("name{label="value"} 42"). Counter names end in _total; a histogram
// named h has the samples h_bucket{le="…"} (cumulative, ending with
// le="+Inf"), h_sum and h_count.
package metrics

import (
	"errors"
	"math"
	"strconv"
)

// Type is a metric family's type.
type Type string

// The family types chatd uses.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// ContentType is the Content-Type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Label is one label of a sample.
type Label struct {
	Name, Value string
}

// HistogramData is a histogram as Prometheus exposes it (the same shape
// as chat.HistogramSnapshot, so one converts to the other).
type HistogramData struct {
	// Bounds are the buckets' upper bounds, ascending; +Inf is implicit.
	Bounds []float64
	// Counts are cumulative: Counts[i] observations were <= Bounds[i].
	Counts []uint64
	// Count is every observation: the +Inf bucket.
	Count uint64
	// Sum is the sum of the observations.
	Sum float64
}

// Writer appends metric families to a buffer in the text format. A family
// that would make the output invalid (a bad name, a counter not ending in
// _total, a name written twice, an inconsistent histogram) is left out and
// recorded in Err; the rest is still written. The zero Writer is ready to
// use; a Writer is not safe for concurrent use.
type Writer struct {
	buf  []byte
	seen map[string]bool // family names written
	err  error
	// Current family: Sample writes under it. skip is set when the family
	// was refused, so its samples are dropped too.
	name string
	typ  Type
	skip bool
}

// Bytes returns the text written so far. It aliases the Writer's buffer.
func (w *Writer) Bytes() []byte { return w.buf }

// Err returns the first problem met, or nil.
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(msg string) {
	if w.err == nil {
		w.err = errors.New("metrics: " + msg)
	}
}

// Family starts a counter or gauge family (histograms are written whole
// by Histogram): writes its HELP and TYPE lines. It reports false (and
// records the reason in Err) if the family is refused; its samples are
// then dropped.
func (w *Writer) Family(name string, t Type, help string) bool {
	if t == Histogram {
		w.name, w.typ, w.skip = name, t, true
		w.fail(name + ": use Histogram for histogram families")
		return false
	}
	return w.family(name, t, help)
}

func (w *Writer) family(name string, t Type, help string) bool {
	w.name, w.typ, w.skip = name, t, true
	switch {
	case !validName(name):
		w.fail("invalid metric name " + strconv.Quote(name))
		return false
	case t != Counter && t != Gauge && t != Histogram:
		w.fail(name + ": unknown type " + strconv.Quote(string(t)))
		return false
	case t == Counter && !hasSuffix(name, "_total"):
		w.fail("counter " + name + " must end in _total")
		return false
	case w.seen[name]:
		w.fail("family " + name + " written twice")
		return false
	}
	if w.seen == nil {
		w.seen = make(map[string]bool)
	}
	w.seen[name] = true
	w.skip = false
	w.buf = append(w.buf, "# HELP "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = appendHelp(w.buf, help)
	w.buf = append(w.buf, "\n# TYPE "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, t...)
	w.buf = append(w.buf, '\n')
	return true
}

// Sample writes one sample of the current counter or gauge family.
func (w *Writer) Sample(v float64, labels ...Label) {
	if w.skip || w.name == "" || w.typ == Histogram {
		return
	}
	if w.typ == Counter && (v < 0 || math.IsNaN(v)) {
		w.fail(w.name + ": counter value " + formatFloat(v))
		return
	}
	for _, l := range labels {
		if !validLabel(l.Name) {
			w.fail(w.name + ": invalid label name " + strconv.Quote(l.Name))
			return
		}
	}
	w.sample(w.name, "", v, labels, "", "")
}

// sample appends name+suffix{labels,extra="extraVal"} v.
func (w *Writer) sample(name, suffix string, v float64, labels []Label, extra, extraVal string) {
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, suffix...)
	if len(labels) > 0 || extra != "" {
		w.buf = append(w.buf, '{')
		for i, l := range labels {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = appendLabel(w.buf, l.Name, l.Value)
		}
		if extra != "" {
			if len(labels) > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = appendLabel(w.buf, extra, extraVal)
		}
		w.buf = append(w.buf, '}')
	}
	w.buf = append(w.buf, ' ')
	w.buf = appendFloat(w.buf, v)
	w.buf = append(w.buf, '\n')
}

// Counter writes a counter family with one unlabelled sample.
func (w *Writer) Counter(name, help string, v float64) {
	if w.Family(name, Counter, help) {
		w.Sample(v)
	}
}

// Gauge writes a gauge family with one unlabelled sample.
func (w *Writer) Gauge(name, help string, v float64) {
	if w.Family(name, Gauge, help) {
		w.Sample(v)
	}
}

// Histogram writes a histogram family with one unlabelled histogram.
func (w *Writer) Histogram(name, help string, h HistogramData) {
	if err := checkHistogram(h); err != "" {
		w.name, w.typ, w.skip = name, Histogram, true
		w.fail(name + ": " + err)
		return
	}
	if !w.family(name, Histogram, help) {
		return
	}
	for i, b := range h.Bounds {
		w.sample(name, "_bucket", float64(h.Counts[i]), nil, "le", formatFloat(b))
	}
	w.sample(name, "_bucket", float64(h.Count), nil, "le", "+Inf")
	w.sample(name, "_sum", h.Sum, nil, "", "")
	w.sample(name, "_count", float64(h.Count), nil, "", "")
}

func checkHistogram(h HistogramData) string {
	if len(h.Bounds) != len(h.Counts) {
		return "bounds and counts differ in length"
	}
	for i := range h.Bounds {
		if math.IsNaN(h.Bounds[i]) || math.IsInf(h.Bounds[i], 0) || i > 0 && h.Bounds[i] <= h.Bounds[i-1] {
			return "bounds must be finite and ascending"
		}
		if i > 0 && h.Counts[i] < h.Counts[i-1] {
			return "counts must be cumulative"
		}
	}
	if len(h.Counts) > 0 && h.Count < h.Counts[len(h.Counts)-1] {
		return "count below the last bucket"
	}
	return ""
}

// validName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validLabel reports whether s is a label name a sample may carry:
// [a-zA-Z_][a-zA-Z0-9_]*, not "le" (reserved for buckets) and not
// starting with "__".
func validLabel(s string) bool {
	if s == "" || s == "le" || len(s) >= 2 && s[:2] == "__" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// appendHelp escapes a HELP text: backslash and line feed.
func appendHelp(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendLabel appends name="value" with the value escaped: backslash,
// double quote and line feed.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendFloat formats v as the text format wants it: integers without an
// exponent (so counters read naturally), +Inf, -Inf, NaN, else the
// shortest representation.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func formatFloat(v float64) string { return string(appendFloat(nil, v)) }

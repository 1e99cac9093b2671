// Package metricstest parses the Prometheus text format strictly, for
// tests that scrape chatd's GET /metrics and check what they read.
package metricstest

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sample is one sample line.
type Sample struct {
	Name   string            // full sample name (with _bucket, _sum, _count)
	Labels map[string]string // nil when the sample has none
	Value  float64
}

// Family is one metric family.
type Family struct {
	Name    string
	Type    string // counter, gauge, histogram, summary, untyped
	Help    string
	Samples []Sample
}

// Families are the parsed families by name.
type Families map[string]*Family

// Parse reads a text exposition and checks it as strictly as Prometheus
// and more: every family has one HELP and one TYPE line before its
// samples; samples of a family are contiguous; a sample belongs to the
// family declared before it; counter names end in _total and their values
// are not negative; no sample (name plus labels) appears twice; histogram
// buckets are cumulative, end with le="+Inf" and agree with _count, and
// _sum and _count are present.
func Parse(text []byte) (Families, error) {
	fams := Families{}
	var cur *Family
	seen := map[string]bool{} // sample name + labels
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		if l == "" {
			continue
		}
		errf := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", line, l, fmt.Sprintf(format, args...))
		}
		if strings.HasPrefix(l, "#") {
			f := strings.SplitN(l, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				continue // a plain comment
			}
			name := f[2]
			rest := ""
			if len(f) == 4 {
				rest = f[3]
			}
			fam := fams[name]
			if fam == nil {
				fam = &Family{Name: name}
				fams[name] = fam
			} else if len(fam.Samples) > 0 {
				return nil, errf("%s of family %s after its samples", f[1], name)
			}
			switch f[1] {
			case "HELP":
				if fam.Help != "" {
					return nil, errf("second HELP for %s", name)
				}
				fam.Help = unescapeHelp(rest)
				if fam.Help == "" {
					return nil, errf("empty HELP")
				}
			case "TYPE":
				if fam.Type != "" {
					return nil, errf("second TYPE for %s", name)
				}
				switch rest {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					return nil, errf("unknown type %q", rest)
				}
				if rest == "counter" && !strings.HasSuffix(name, "_total") {
					return nil, errf("counter %s does not end in _total", name)
				}
				fam.Type = rest
			}
			cur = fam
			continue
		}
		s, err := parseSample(l)
		if err != nil {
			return nil, errf("%v", err)
		}
		if cur == nil || !belongs(cur, s.Name) {
			return nil, errf("sample %s outside its family's block", s.Name)
		}
		if cur.Type == "" || cur.Help == "" {
			return nil, errf("family %s has no TYPE or HELP before its samples", cur.Name)
		}
		if cur.Type == "counter" && (s.Value < 0 || math.IsNaN(s.Value)) {
			return nil, errf("counter value %v", s.Value)
		}
		key := s.Name + "{" + labelKey(s.Labels, "") + "}"
		if seen[key] {
			return nil, errf("duplicate sample %s", key)
		}
		seen[key] = true
		cur.Samples = append(cur.Samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, f := range fams {
		if f.Type == "" {
			return nil, fmt.Errorf("family %s has HELP but no TYPE", f.Name)
		}
		if f.Type == "histogram" {
			if err := checkHistogram(f); err != nil {
				return nil, err
			}
		}
	}
	return fams, nil
}

// belongs reports whether a sample named name is part of family f.
func belongs(f *Family, name string) bool {
	if name == f.Name {
		return f.Type != "histogram"
	}
	if f.Type == "histogram" || f.Type == "summary" {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if name == f.Name+suf {
				return suf != "_bucket" || f.Type == "histogram"
			}
		}
	}
	return false
}

// checkHistogram checks every labelled histogram of f.
func checkHistogram(f *Family) error {
	type series struct {
		les        []float64
		counts     []float64
		sum, count bool
		countV     float64
	}
	all := map[string]*series{}
	get := func(k string) *series {
		if all[k] == nil {
			all[k] = &series{}
		}
		return all[k]
	}
	for _, s := range f.Samples {
		k := labelKey(s.Labels, "le")
		switch s.Name {
		case f.Name + "_bucket":
			le, ok := s.Labels["le"]
			if !ok {
				return fmt.Errorf("%s: bucket without le", f.Name)
			}
			v, err := parseValue(le)
			if err != nil {
				return fmt.Errorf("%s: bad le %q", f.Name, le)
			}
			sr := get(k)
			if n := len(sr.les); n > 0 && v <= sr.les[n-1] {
				return fmt.Errorf("%s: le %q not ascending", f.Name, le)
			}
			if n := len(sr.counts); n > 0 && s.Value < sr.counts[n-1] {
				return fmt.Errorf("%s: bucket le=%q below the one before (not cumulative)", f.Name, le)
			}
			sr.les = append(sr.les, v)
			sr.counts = append(sr.counts, s.Value)
		case f.Name + "_sum":
			get(k).sum = true
		case f.Name + "_count":
			sr := get(k)
			sr.count, sr.countV = true, s.Value
		}
	}
	if len(all) == 0 {
		return fmt.Errorf("histogram %s has no samples", f.Name)
	}
	for k, sr := range all {
		n := len(sr.les)
		switch {
		case n == 0 || !math.IsInf(sr.les[n-1], 1):
			return fmt.Errorf("%s{%s}: no le=\"+Inf\" bucket", f.Name, k)
		case !sr.sum || !sr.count:
			return fmt.Errorf("%s{%s}: _sum or _count missing", f.Name, k)
		case sr.countV != sr.counts[n-1]:
			return fmt.Errorf("%s{%s}: _count %v differs from the +Inf bucket %v", f.Name, k, sr.countV, sr.counts[n-1])
		}
	}
	return nil
}

// parseSample parses `name{a="b",c="d"} value [timestamp]`.
func parseSample(l string) (Sample, error) {
	var s Sample
	i := 0
	for i < len(l) && l[i] != '{' && l[i] != ' ' {
		i++
	}
	s.Name = l[:i]
	if !validName(s.Name) {
		return s, fmt.Errorf("bad metric name %q", s.Name)
	}
	if i < len(l) && l[i] == '{' {
		i++
		s.Labels = map[string]string{}
		for {
			if i < len(l) && l[i] == '}' {
				i++
				break
			}
			j := i
			for j < len(l) && l[j] != '=' {
				j++
			}
			name := l[i:j]
			if !validName(name) || strings.Contains(name, ":") {
				return s, fmt.Errorf("bad label name %q", name)
			}
			if j+1 >= len(l) || l[j+1] != '"' {
				return s, fmt.Errorf("label %s: value not quoted", name)
			}
			var val strings.Builder
			k := j + 2
			for ; k < len(l) && l[k] != '"'; k++ {
				if l[k] == '\\' && k+1 < len(l) {
					k++
					switch l[k] {
					case 'n':
						val.WriteByte('\n')
					case '\\', '"':
						val.WriteByte(l[k])
					default:
						return s, fmt.Errorf("label %s: bad escape \\%c", name, l[k])
					}
					continue
				}
				val.WriteByte(l[k])
			}
			if k >= len(l) {
				return s, fmt.Errorf("label %s: unterminated value", name)
			}
			if _, dup := s.Labels[name]; dup {
				return s, fmt.Errorf("label %s twice", name)
			}
			s.Labels[name] = val.String()
			i = k + 1
			if i < len(l) && l[i] == ',' {
				i++
			}
		}
	}
	if i >= len(l) || l[i] != ' ' {
		return s, fmt.Errorf("no value")
	}
	f := strings.Fields(l[i:])
	if len(f) < 1 || len(f) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := parseValue(f[0])
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func unescapeHelp(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(s)
}

// labelKey renders labels sorted, without the one named except.
func labelKey(labels map[string]string, except string) string {
	var keys []string
	for k := range labels {
		if k != except {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.Quote(labels[k]))
	}
	return b.String()
}

// Value returns the value of the sample named name whose labels include
// every pair in labels (name, value, name, value…).
func (fs Families) Value(name string, labels ...string) (float64, bool) {
	fam := fs[name]
	if fam == nil {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok && fs[base] != nil {
				fam = fs[base]
				break
			}
		}
	}
	if fam == nil {
		return 0, false
	}
next:
	for _, s := range fam.Samples {
		if s.Name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if v, ok := s.Labels[labels[i]]; !ok || v != labels[i+1] {
				continue next
			}
		}
		return s.Value, true
	}
	return 0, false
}

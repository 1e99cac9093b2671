package metricstest

import (
	"strings"
	"testing"
)

func TestParseRejects(t *testing.T) {
	const h = "# HELP x_total X.\n# TYPE x_total counter\n"
	const hist = "# HELP h H.\n# TYPE h histogram\n"
	tests := []struct {
		name, text, wantErr string
	}{
		{name: "counter without _total", text: "# HELP x X.\n# TYPE x counter\nx 1\n", wantErr: "does not end in _total"},
		{name: "sample before TYPE", text: "x_total 1\n", wantErr: "outside its family"},
		{name: "missing HELP", text: "# TYPE x_total counter\nx_total 1\n", wantErr: "no TYPE or HELP"},
		{name: "negative counter", text: h + "x_total -1\n", wantErr: "counter value"},
		{name: "duplicate sample", text: h + "x_total{a=\"1\"} 1\nx_total{a=\"1\"} 2\n", wantErr: "duplicate sample"},
		{name: "second TYPE", text: h + "# TYPE x_total counter\n", wantErr: "second TYPE"},
		{name: "family split in two blocks", text: h + "x_total 1\n# HELP y Y.\n# TYPE y gauge\ny 1\nx_total{a=\"b\"} 1\n", wantErr: "outside its family"},
		{name: "unquoted label", text: h + "x_total{a=1} 1\n", wantErr: "not quoted"},
		{name: "bad value", text: h + "x_total one\n", wantErr: "invalid syntax"},
		{name: "bucket not cumulative", text: hist + "h_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 4\nh_sum 1\nh_count 4\n", wantErr: "not cumulative"},
		{name: "no +Inf bucket", text: hist + "h_bucket{le=\"1\"} 5\nh_sum 1\nh_count 5\n", wantErr: "+Inf"},
		{name: "count differs from +Inf", text: hist + "h_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 6\n", wantErr: "differs"},
		{name: "no _sum", text: hist + "h_bucket{le=\"+Inf\"} 5\nh_count 5\n", wantErr: "_sum or _count missing"},
		{name: "le not ascending", text: hist + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", wantErr: "not ascending"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	text := `# HELP x_total X.
# TYPE x_total counter
x_total{code="a"} 1
x_total{code="b"} 2
# HELP h H.
# TYPE h histogram
h_bucket{le="0.5"} 1
h_bucket{le="+Inf"} 3
h_sum 4.5
h_count 3
`
	fams, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := fams.Value("x_total", "code", "b"); !ok || v != 2 {
		t.Fatalf("x_total{code=b} = %v, %v", v, ok)
	}
	if v, ok := fams.Value("h_bucket", "le", "0.5"); !ok || v != 1 {
		t.Fatalf("h_bucket{le=0.5} = %v, %v", v, ok)
	}
	if v, ok := fams.Value("h_count"); !ok || v != 3 {
		t.Fatalf("h_count = %v, %v", v, ok)
	}
	if _, ok := fams.Value("x_total", "code", "c"); ok {
		t.Fatal("found a sample that is not there")
	}
}

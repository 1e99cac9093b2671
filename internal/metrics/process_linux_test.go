package metrics

import (
	"os"
	"testing"

	"chatd/internal/metrics/metricstest"
)

func TestProcessFiguresOnLinux(t *testing.T) {
	p := ReadProcess()
	if p.RSSEstimated || p.RSS < 1<<20 {
		t.Fatalf("RSS %d (estimated %v): want it read from /proc, at least 1 MiB", p.RSS, p.RSSEstimated)
	}
	before := p.OpenFDs
	if before < 3 {
		t.Fatalf("OpenFDs = %d", before)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	after := ReadProcess().OpenFDs
	f.Close()
	if after != before+1 {
		t.Fatalf("open fds %d → %d after opening one file", before, after)
	}
	if p.MaxFDs < int64(before) || p.CPUSeconds <= 0 {
		t.Fatalf("MaxFDs %d, CPUSeconds %v", p.MaxFDs, p.CPUSeconds)
	}
	var w Writer
	WriteProcess(&w)
	fams, err := metricstest.Parse(w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"process_open_fds", "process_max_fds", "process_cpu_seconds_total"} {
		if _, ok := fams.Value(name); !ok {
			t.Errorf("%s missing on Linux", name)
		}
	}
}

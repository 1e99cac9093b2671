package bench

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseServerTrace(t *testing.T) {
	in := "# chatd message trace: session seq decoded commit_start commit_end answered (unix ns); 2 records, 7 dropped past max\n" +
		"3 10 100 110 150 160\n" +
		"4 1 105 110 150 170\n"
	r := parseServerTrace(bufio.NewScanner(strings.NewReader(in)))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.dropped != 7 || len(r.recs) != 2 {
		t.Fatalf("dropped %d, %d records; want 7 and 2", r.dropped, len(r.recs))
	}
	if got := r.recs[traceKey{4, 1}]; got != (srvTrace{105, 110, 150, 170}) {
		t.Fatalf("record 4/1 = %+v", got)
	}
	for _, bad := range []string{"3 10 100 110 150\n", "3 10 100 110 150 x\n"} {
		if r := parseServerTrace(bufio.NewScanner(strings.NewReader(bad))); r.err == nil {
			t.Errorf("%q parsed without an error", bad)
		}
	}
}

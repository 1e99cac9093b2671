package bench

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"chatd/httpapi/apiclient"
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

// TestFetchServerTraceOutlastsClientTimeout checks that the trace request
// is bounded by its context, not by the API client's timeout, which is
// shorter than a long run's trace.
func TestFetchServerTraceOutlastsClientTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/msgtrace" || r.URL.Query().Get("seconds") != "0.300" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "# chatd message trace: …; 1 records, 0 dropped past max\n5 2 10 20 30 40\n")
	}))
	defer srv.Close()
	e := &env{api: &apiclient.Client{BaseURL: srv.URL, HTTP: &http.Client{Timeout: 100 * time.Millisecond}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := fetchServerTrace(ctx, e, 0.3)
	if r.err != nil || len(r.recs) != 1 || r.recs[traceKey{5, 2}] != (srvTrace{10, 20, 30, 40}) {
		t.Fatalf("fetch: %+v", r)
	}
}

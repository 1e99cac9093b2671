package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the stall sampler process.
func TestMain(m *testing.M) {
	switch os.Getenv("CHATBENCH_TEST_STALL_SAMPLER") {
	case "run":
		tick, err := time.ParseDuration(os.Args[len(os.Args)-1])
		if err != nil {
			os.Exit(2)
		}
		if err := RunStallSampler(os.Stdin, os.Stdout, tick); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	case "garbage":
		os.Stdout.WriteString("not a report\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHostStallsChild(t *testing.T) {
	t.Setenv("CHATBENCH_TEST_STALL_SAMPLER", "run")
	stop := startHostStalls([]string{os.Args[0]}, 2*time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	r, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	// 2 ms ticks from whenever the child got going until its stdin
	// closed: some, about 200 at most (a few more when the stop is seen late).
	if r.Wakes < 10 || r.Wakes > 210 || r.Lateness.Count != r.Wakes || r.TickUS != 2000 {
		t.Errorf("report %+v", r)
	}
}

func TestHostStallsChildFails(t *testing.T) {
	if _, err := startHostStalls([]string{"/nonexistent/chatbench-sampler"}, time.Millisecond)(); err == nil || !strings.Contains(err.Error(), "stall sampler") {
		t.Errorf("missing command: error %v", err)
	}
	t.Setenv("CHATBENCH_TEST_STALL_SAMPLER", "garbage")
	if _, err := startHostStalls([]string{os.Args[0]}, time.Millisecond)(); err == nil || !strings.Contains(err.Error(), "bad report") {
		t.Errorf("garbage from the child: error %v", err)
	}
}

func TestHostStallsInProcess(t *testing.T) {
	stop := startHostStalls(nil, time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	r, err := stop()
	if err != nil || r.Wakes < 10 || r.Wakes > 110 { // a 1 ms tick for 100 ms: about 100 wakes, a few more when the stop is seen late
		t.Errorf("report %+v, error %v", r, err)
	}
}

package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The stall sampler beside a run (Report.HostStalls) runs in a process of
// its own when Options.StallSampler names one: inside chatbench its
// wake-ups would also wait for chatbench's own goroutines, garbage
// collections and busy Ps, and the figure is meant to be the machine's.

// RunStallSampler is that process's side: it samples every tick until r
// ends (the parent closes the pipe), then writes the StallReport to w as
// JSON.
func RunStallSampler(r io.Reader, w io.Writer, tick time.Duration) error {
	stop := startStalls(tick)
	io.Copy(io.Discard, r)
	return json.NewEncoder(w).Encode(stop())
}

// startHostStalls starts the sampler with the given tick: argv as a child
// process when given (the tick appended to its arguments), else a thread
// of this process. The function it returns stops it and returns its
// report.
func startHostStalls(argv []string, tick time.Duration) (stop func() (*StallReport, error)) {
	if len(argv) == 0 {
		s := startStalls(tick)
		return func() (*StallReport, error) { return s(), nil }
	}
	cmd := exec.Command(argv[0], append(argv[1:len(argv):len(argv)], tick.String())...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1") // one thread that sleeps: nothing else to wait for
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	in, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		return func() (*StallReport, error) { return nil, errors.New("stall sampler: " + err.Error()) }
	}
	return func() (*StallReport, error) {
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			err = <-done
		}
		if err != nil {
			return nil, errors.New("stall sampler: " + err.Error() + ": " + strings.TrimSpace(errb.String()))
		}
		var r StallReport
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return nil, errors.New("stall sampler: bad report: " + err.Error())
		}
		return &r, nil
	}
}

package proc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Component is one long-running part of the server.
type Component struct {
	// Name is used in logs and errors.
	Name string
	// Run serves until its ctx is cancelled and returns nil after a clean
	// stop; an error (or a nil return before ctx ends) stops the whole
	// stack.
	Run func(ctx context.Context) error
	// Ready is closed once the component serves. Nil: ready as soon as Run
	// has been started.
	Ready <-chan struct{}
}

// Closer is a Component that does nothing until stopped and then calls
// close: the store, which must close after everything that uses it.
func Closer(name string, close func() error) Component {
	return Component{Name: name, Run: func(ctx context.Context) error {
		<-ctx.Done()
		return close()
	}}
}

// Stack runs components in order, each once the previous one is ready,
// and stops them in reverse order, each after the later ones have
// returned. For chatd: store, core, HTTP API, reactor — so the reactor
// closes client connections (1001) first and the core drains its journal
// before the store closes.
type Stack struct {
	Components []Component
	// OnReady runs once every component is ready (chatd publishes
	// chatd.run and logs its addresses there). An error stops the stack.
	OnReady func() error
	// StopTimeout bounds the whole stop; a component still running at the
	// deadline makes Run return an error without waiting for it or
	// stopping the ones before it. Zero means 30 s.
	StopTimeout time.Duration
	Log         zerolog.Logger
}

type running struct {
	c      Component
	cancel context.CancelFunc
	done   chan error // buffered; receives Run's result once
}

// Run starts the stack and blocks until ctx ends or a component fails,
// then stops everything started so far in reverse. It returns nil after a
// clean stop on ctx, else the first failure joined with any stop errors.
func (s *Stack) Run(ctx context.Context) error {
	var started []*running
	var cause error
	failed := make(chan int, len(s.Components)) // index of a component that returned early

	start := func(i int, c Component) *running {
		// Each component gets its own context, not derived from ctx's
		// cancellation, so stopping can go in order.
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
		go func() {
			r.done <- c.Run(cctx)
			failed <- i
		}()
		return r
	}

startup:
	for i, c := range s.Components {
		r := start(i, c)
		started = append(started, r)
		if c.Ready == nil {
			continue
		}
		select {
		case <-c.Ready:
		case <-ctx.Done():
			break startup
		case j := <-failed:
			cause = s.failure(started[j])
			break startup
		}
	}
	if cause == nil && ctx.Err() == nil && s.OnReady != nil {
		if err := s.OnReady(); err != nil {
			cause = err
		}
	}
	if cause == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case j := <-failed:
			cause = s.failure(started[j])
		}
	}
	return errors.Join(cause, s.stop(started))
}

// failure turns a component's early return into the stack's cause. Its
// result has been consumed from done, so done is refilled for stop.
func (s *Stack) failure(r *running) error {
	err := <-r.done
	r.done <- nil // stop() must not wait or report it twice
	if err == nil {
		return fmt.Errorf("%s stopped unexpectedly", r.c.Name)
	}
	return fmt.Errorf("%s: %w", r.c.Name, err)
}

func (s *Stack) stop(started []*running) error {
	timeout := s.StopTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		t0 := time.Now()
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", r.c.Name, err))
				s.Log.Error().Err(err).Str("component", r.c.Name).Msg("stop failed")
			} else {
				s.Log.Debug().Str("component", r.c.Name).Dur("took", time.Since(t0)).Msg("stopped")
			}
		case <-deadline.C:
			return errors.Join(append(errs, fmt.Errorf("stop %s: still running after %s (shutdown_timeout); giving up", r.c.Name, timeout))...)
		}
	}
	return errors.Join(errs...)
}

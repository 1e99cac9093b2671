package proc

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// recorder collects start/stop events from fake components in order.
type recorder struct {
	mu     sync.Mutex // guards events
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// fake is a component that becomes ready after readyAfter, fails with
// failErr when failWhen says (if set), and on stop sleeps stopDelay and returns
// stopErr.
type fake struct {
	name       string
	readyAfter time.Duration
	// failWhen: "start" fails at once (before being ready), "ready" once
	// the whole stack is ready (stackReady closed), "" never. Events, not
	// sleeps: under load a sleep raced the stack's own progress.
	failWhen  string
	failErr   error
	stopDelay time.Duration
	stopErr   error
	noReady   bool // never becomes ready
}

func (f fake) component(r *recorder, stackReady <-chan struct{}) Component {
	ready := make(chan struct{})
	return Component{
		Name:  f.name,
		Ready: ready,
		Run: func(ctx context.Context) error {
			r.add("start " + f.name)
			var fail <-chan time.Time
			switch f.failWhen {
			case "start":
				now := make(chan time.Time)
				close(now)
				fail = now
			case "ready":
				after := make(chan time.Time)
				go func() {
					select {
					case <-stackReady:
						close(after)
					case <-ctx.Done():
					}
				}()
				fail = after
			}
			if !f.noReady {
				select {
				case <-time.After(f.readyAfter):
					close(ready)
				case <-ctx.Done():
				}
			}
			select {
			case <-ctx.Done():
			case <-fail:
				r.add("fail " + f.name)
				return f.failErr
			}
			time.Sleep(f.stopDelay)
			r.add("stop " + f.name)
			return f.stopErr
		},
	}
}

func TestStack(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name          string
		fakes         []fake
		cancelOnReady bool // cancel the stack's ctx once it is ready (else a failure must end it)
		onReadyErr    error
		stopTimeout   time.Duration
		wantEvents    []string
		wantReady     bool
		wantErr       string
	}{
		{
			name:          "start in order, stop in reverse",
			fakes:         []fake{{name: "store"}, {name: "core", readyAfter: 10 * time.Millisecond}, {name: "http"}, {name: "ws"}},
			cancelOnReady: true,
			wantEvents:    []string{"start store", "start core", "start http", "start ws", "ready", "stop ws", "stop http", "stop core", "stop store"},
			wantReady:     true,
		},
		{
			name:       "failure after ready stops the rest in reverse",
			fakes:      []fake{{name: "store"}, {name: "core", failWhen: "ready", failErr: boom}, {name: "ws"}},
			wantEvents: []string{"start store", "start core", "start ws", "ready", "fail core", "stop ws", "stop store"},
			wantReady:  true,
			wantErr:    "core: boom",
		},
		{
			name:       "failure during startup skips later components",
			fakes:      []fake{{name: "store"}, {name: "ws", noReady: true, failWhen: "start", failErr: boom}, {name: "never"}},
			wantEvents: []string{"start store", "start ws", "fail ws", "stop store"},
			wantErr:    "ws: boom",
		},
		{
			name:       "nil return before stop is a failure",
			fakes:      []fake{{name: "store"}, {name: "core", failWhen: "ready"}},
			wantEvents: []string{"start store", "start core", "ready", "fail core", "stop store"},
			wantReady:  true,
			wantErr:    "core stopped unexpectedly",
		},
		{
			name:          "stop errors are reported",
			fakes:         []fake{{name: "store", stopErr: boom}, {name: "ws"}},
			cancelOnReady: true,
			wantEvents:    []string{"start store", "start ws", "ready", "stop ws", "stop store"},
			wantReady:     true,
			wantErr:       "stop store: boom",
		},
		{
			name:       "OnReady error stops the stack",
			fakes:      []fake{{name: "store"}, {name: "ws"}},
			onReadyErr: boom,
			wantEvents: []string{"start store", "start ws", "ready", "stop ws", "stop store"},
			wantReady:  true,
			wantErr:    "boom",
		},
		{
			name:          "stop timeout gives up",
			fakes:         []fake{{name: "store"}, {name: "core", stopDelay: time.Second}},
			cancelOnReady: true,
			stopTimeout:   100 * time.Millisecond,
			wantEvents:    []string{"start store", "start core", "ready"},
			wantReady:     true,
			wantErr:       "stop core: still running after 100ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			stackReady := make(chan struct{})
			var comps []Component
			for _, f := range tt.fakes {
				comps = append(comps, f.component(rec, stackReady))
			}
			ready := false
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &Stack{
				Components:  comps,
				StopTimeout: tt.stopTimeout,
				Log:         zerolog.Nop(),
				OnReady: func() error {
					ready = true
					rec.add("ready")
					close(stackReady)
					if tt.cancelOnReady {
						cancel()
					}
					return tt.onReadyErr
				},
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Stack.Run did not return")
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if ready != tt.wantReady {
				t.Fatalf("OnReady called = %v, want %v", ready, tt.wantReady)
			}
			if got := rec.get(); !reflect.DeepEqual(got, tt.wantEvents) {
				t.Fatalf("events:\n got %q\nwant %q", got, tt.wantEvents)
			}
		})
	}
}

func TestStackCancelDuringStartup(t *testing.T) {
	rec := &recorder{}
	comps := []Component{fake{name: "store"}.component(rec, nil), fake{name: "slow", noReady: true}.component(rec, nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	called := false
	err := (&Stack{Components: comps, Log: zerolog.Nop(), OnReady: func() error { called = true; return nil }}).Run(ctx)
	if err != nil || called {
		t.Fatalf("err = %v, OnReady called = %v", err, called)
	}
	want := []string{"start store", "start slow", "stop slow", "stop store"}
	if got := rec.get(); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestCloser(t *testing.T) {
	closed := make(chan struct{})
	c := Closer("store", func() error { close(closed); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-closed:
		t.Fatal("closed before stop")
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-closed
}

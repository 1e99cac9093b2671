package metrics

import (
	"context"
	"runtime"
	"time"

	"chatd/chat"
)

// DefaultInfoInterval is how often the serverInfo event is published.
const DefaultInfoInterval = 2 * time.Second

// Transport is the WebSocket listener's share of serverInfo.
type Transport struct {
	Conns    int    // connections held now
	BytesIn  uint64 // bytes read since start
	BytesOut uint64 // bytes written since start
}

// InfoPublisher publishes the live stream's serverInfo event every
// Interval. Rates are computed from the change of the counters since the
// previous tick. When nobody subscribes, a tick only reads the counters.
//
// Its fields are set before Run and not changed after.
type InfoPublisher struct {
	Core *chat.Core
	// Interval between events. Zero means 2 s.
	Interval time.Duration
	// Version is reported in every event.
	Version string
	// StartedAt is the server's start. Zero means when the process
	// started.
	StartedAt time.Time
	// Transport reads the WebSocket listener's figures. Nil: connections
	// are the core's attached clients and byte rates are zero.
	Transport func() Transport
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// counterSample is the counters at one tick; owned by Run.
type counterSample struct {
	at                 time.Time
	msgsIn, deliveries uint64
	bytesIn, bytesOut  uint64
	conns              int
	core               chat.Stats
}

// Run publishes until ctx ends; it always returns nil.
func (p *InfoPublisher) Run(ctx context.Context) error {
	iv := p.Interval
	if iv <= 0 {
		iv = DefaultInfoInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	prev := p.sample()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur := p.sample()
		if p.Core.Listened() { // a subscriber here, or on another node of a cluster
			info := p.info(prev, cur)
			p.Core.Publish(chat.Event{Topic: chat.TopicServerInfo, Time: cur.at.UnixMilli(), Info: &info})
		}
		prev = cur
	}
}

func (p *InfoPublisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// sample reads the counters.
func (p *InfoPublisher) sample() counterSample {
	s := counterSample{at: p.now(), core: p.Core.Stats()}
	s.msgsIn, s.deliveries = s.core.MessagesIn, s.core.Deliveries
	if p.Transport != nil {
		tr := p.Transport()
		s.conns, s.bytesIn, s.bytesOut = tr.Conns, tr.BytesIn, tr.BytesOut
	} else {
		s.conns = s.core.Clients
	}
	return s
}

// info builds the serverInfo body from two samples: gauges from cur, rates
// from the change since prev, and the runtime's figures read now.
func (p *InfoPublisher) info(prev, cur counterSample) chat.ServerInfo {
	started := p.StartedAt
	if started.IsZero() {
		started = processStart
	}
	secs := cur.at.Sub(prev.at).Seconds()
	rate := func(a, b uint64) float64 {
		if secs <= 0 || b < a {
			return 0
		}
		return float64(b-a) / secs
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return chat.ServerInfo{
		Version:        p.Version,
		StartedAt:      started.UnixMilli(),
		UptimeSeconds:  int64(cur.at.Sub(started) / time.Second),
		Conns:          cur.conns,
		UsersOnline:    cur.core.UsersOnline,
		MsgsInPerSec:   rate(prev.msgsIn, cur.msgsIn),
		MsgsOutPerSec:  rate(prev.deliveries, cur.deliveries),
		BytesInPerSec:  rate(prev.bytesIn, cur.bytesIn),
		BytesOutPerSec: rate(prev.bytesOut, cur.bytesOut),
		JournalDepth:   cur.core.JournalDepth,
		LastCommitMS:   float64(cur.core.LastCommit) / 1e6,
		HeapBytes:      ms.HeapAlloc,
		RSSBytes:       RSS(),
		Goroutines:     runtime.NumGoroutine(),
		GCCount:        ms.NumGC,
		GCPauseMS:      float64(LastPause(&ms)) / 1e6,
	}
}

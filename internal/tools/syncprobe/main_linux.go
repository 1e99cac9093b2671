// Command syncprobe measures what pipelining the WAL's fdatasync would buy
// before building it: it writes records of -rec bytes at -rate per second
// (open loop, paced on a timerfd) in place over a preallocated file, as
// chatd's WAL does, gathering whatever arrived while the previous write
// was syncing into one batch, with up to -depth syncs in flight. A record
// counts as done when a sync started after its write has finished and
// every earlier batch is done; the report is the time from its scheduled
// arrival to then. docs/performance.md has the figures.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	depth := flag.Int("depth", 1, "fdatasyncs in flight")
	rate := flag.Int("rate", 10000, "records per second")
	dur := flag.Duration("d", 5*time.Second, "how long to write")
	rec := flag.Int("rec", 300, "bytes per record")
	path := flag.String("file", "syncprobe.wal", "scratch file (removed at the end)")
	flag.Parse()

	const size = 64 << 20
	f, err := os.OpenFile(*path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.Remove(*path)
	if _, err := f.WriteAt(make([]byte, size), 0); err != nil || f.Sync() != nil {
		fmt.Fprintln(os.Stderr, "preallocate:", err)
		os.Exit(1)
	}
	fd := int(f.Fd())

	arrivals := make(chan time.Time, 1<<20)
	go pace(arrivals, *rate, *dur)

	var mu sync.Mutex
	var lat []time.Duration
	slots := make(chan struct{}, *depth)
	prev := make(chan struct{})
	close(prev)
	var wg sync.WaitGroup
	buf := make([]byte, 0, 1<<20)
	var off int64
	batches := 0
	for first := range arrivals {
		ts := []time.Time{first}
	gather:
		for {
			select {
			case t, ok := <-arrivals:
				if !ok {
					break gather
				}
				ts = append(ts, t)
			default:
				break gather
			}
		}
		slots <- struct{}{}
		buf = buf[:0]
		for range ts {
			buf = append(buf, make([]byte, *rec)...)
		}
		if off+int64(len(buf)) > size {
			off = 0
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		off += int64(len(buf))
		batches++
		done, before := make(chan struct{}), prev
		prev = done
		wg.Go(func() {
			_ = unix.Fdatasync(fd)
			<-slots
			<-before // in order: a batch is done only after every earlier one
			now := time.Now()
			mu.Lock()
			for _, t := range ts {
				lat = append(lat, now.Sub(t))
			}
			mu.Unlock()
			close(done)
		})
	}
	wg.Wait()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("depth %d: %d records in %d batches; arrival to durable p50 %v p90 %v p99 %v p99.9 %v max %v\n",
		*depth, len(lat), batches, q(.5), q(.9), q(.99), q(.999), lat[len(lat)-1])
}

// pace sends each record's scheduled time on out at that time, sleeping on
// a timerfd (Go's timers round idle waits up to a millisecond).
func pace(out chan<- time.Time, rate int, d time.Duration) {
	defer close(out)
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer unix.Close(tfd)
	start := time.Now()
	per := time.Second / time.Duration(rate)
	var b [8]byte
	for n := 0; ; {
		now := time.Now()
		if now.Sub(start) >= d {
			return
		}
		for at := start.Add(time.Duration(n) * per); !at.After(now); at = start.Add(time.Duration(n) * per) {
			out <- at
			n++
		}
		wait := time.Until(start.Add(time.Duration(n) * per))
		if wait > 0 {
			spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(wait))}
			_ = unix.TimerfdSettime(tfd, 0, &spec, nil)
			_, _ = unix.Read(tfd, b[:])
		}
	}
}

//go:build linux

package reactor

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkBroadcast sends one shared 100-byte payload to each of 1,000
// connections per iteration, as the core fans out a group message, and
// reports deliveries/s. inflight is how many broadcasts may be unread at
// once: with 1 every connection gets one frame per writev; with 64 frames
// queued for the same connection coalesce into one writev.
//
// The clients are read by one goroutine with its own epoll set, so that
// 1,000 client goroutines do not compete with the event loops for the
// benchmark's Ps (which would measure the Go scheduler, not the reactor).
func BenchmarkBroadcast(b *testing.B) {
	for _, inflight := range []int{1, 64} {
		b.Run("conns=1000/inflight="+strconv.Itoa(inflight), func(b *testing.B) {
			benchBroadcast(b, 1000, inflight)
		})
	}
}

func benchBroadcast(b *testing.B, conns, inflight int) {
	const size = 100
	core := newFakeCore(nil)
	s := startServer(b, Config{Loops: 2, MaxOutbound: 1 << 30}, core)
	frameLen := int64(len(wsprotoHeader(size)) + size)

	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(epfd)
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for i := 0; i < conns; i++ {
		fd, err := rawClientFD(b, s.Addr(), "127.0.0."+strconv.Itoa(2+i%4))
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
		fds = append(fds, fd)
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, "accepts", 10*time.Second, func() bool { return core.accepted.Load() == int64(conns) })

	var received atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the one reader
		defer wg.Done()
		events := make([]unix.EpollEvent, 256)
		buf := make([]byte, 64<<10)
		rest := make(map[int32]int64, conns)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := unix.EpollWait(epfd, events, 50)
			if err != nil && err != unix.EINTR {
				return
			}
			var got int64
			for _, ev := range events[:max(n, 0)] {
				for {
					m, err := unix.Read(int(ev.Fd), buf)
					if m <= 0 || err != nil {
						break
					}
					r := rest[ev.Fd] + int64(m)
					got += r / frameLen
					rest[ev.Fd] = r % frameLen
					if m < len(buf) {
						break
					}
				}
			}
			received.Add(got)
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	peers := core.allPeers()
	payload := bytes.Repeat([]byte("b"), size)
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		for _, p := range peers {
			if !p.peer.Send(payload) {
				b.Fatal("Send refused")
			}
		}
		n++
		if n%inflight == 0 {
			for received.Load() < int64(n-inflight/2)*int64(conns) {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
	for received.Load() < int64(n)*int64(conns) {
		time.Sleep(10 * time.Microsecond)
	}
	b.ReportMetric(float64(n*conns)/time.Since(start).Seconds(), "deliveries/s")
}

// rawClientFD opens a WebSocket client connection from source IP local and
// returns a non-blocking duplicate of its socket for epoll.
func rawClientFD(b *testing.B, addr, local string) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	rawUpgrade(b, c, addr)
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.Dup(int(s)) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	unix.CloseOnExec(fd)
	return fd, unix.SetNonblock(fd, true)
}

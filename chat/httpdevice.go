package chat

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
)

// HTTP devices: how a client without a WebSocket receives events.
//
// A user's HTTP clients (long-poll, Server-Sent Events, recv) share one
// HTTPDevice: a Peer that the core registers as one more logged-in device
// of the user, so every event a WebSocket device receives (message, read,
// group, …) is delivered to it by the same code. Instead of a socket it
// has a bounded ring of the recent events, each numbered; an HTTP client
// reads the ring from a cursor (epoch.seq) and waits when it has read
// everything.
//
// A device exists only while the user has an HTTP client reading events:
// the first read creates it (the user comes online), and the core's
// sweeper removes it once no read has been waiting for Config.HTTPEventsKeep
// (the user goes offline, if that was their last device). A user with no
// HTTP client costs nothing: no device, no ring, no entry in the map.
//
// What a cursor covers: the events after it, while they are in the ring
// (at most HTTPEventsMax events and HTTPEventsBytes bytes; older events
// are evicted) and while the device lives. A cursor older than the oldest
// event kept, or from a device that is gone (expired, kicked, a restart:
// the epoch differs), is answered Resync with a fresh cursor: the client
// reloads its state with `sessions` and `sync`, then reads from the fresh
// cursor. Nothing is silently lost: every gap is a Resync.

// Defaults of the HTTP device settings in Config.
const (
	DefaultHTTPEventsMax   = 1000
	DefaultHTTPEventsBytes = 1 << 20
)

// HTTPEvents is one read of a device's ring.
type HTTPEvents struct {
	Events [][]byte // encoded events (the WebSocket frames' JSON), oldest first; read-only
	Cursor string   // where the next read starts
	// Resync is set when the cursor's events are no longer all kept: the
	// client must reload with sessions + sync, then read from Cursor.
	Resync bool
}

// HTTPDevice is one user's HTTP event ring; see the file comment. It
// implements Peer.
type HTTPDevice struct {
	core  *Core
	cl    *Client
	key   string // userKey(app, uid): its entry in Core.httpDevs
	epoch string // random per device: a cursor of another device is recognised

	mu       sync.Mutex    // guards everything below
	ring     [][]byte      // ring[head:] are the kept events; event seq first+i-head is ring[i]
	head     int           //
	first    uint64        // seq of ring[head]
	bytes    int           // bytes of the kept events
	wake     chan struct{} // closed at the next event or close; nil when nobody waits
	holders  int           // reads in progress (waiting long-polls, open streams)
	lastUse  int64         // unix ms when the last holder let go
	closed   bool
	maxCount int
	maxBytes int
}

var _ Peer = (*HTTPDevice)(nil)

// HoldHTTPDevice returns the user's HTTP device, creating it (and
// registering it as a logged-in device) when there is none, and holds it
// (see Hold): the caller must Release it. The caller has authenticated id.
func (c *Core) HoldHTTPDevice(id Identity) *HTTPDevice {
	key := userKey(id.App, id.UID)
	c.httpMu.Lock()
	defer c.httpMu.Unlock()
	if d := c.httpDevs[key]; d != nil {
		d.Hold()
		return d
	}
	var rb [6]byte
	rand.Read(rb[:])
	d := &HTTPDevice{core: c, key: key, epoch: hex.EncodeToString(rb[:]), first: 1,
		lastUse: c.nowMS(), holders: 1, maxCount: c.cfg.HTTPEventsMax, maxBytes: c.cfg.HTTPEventsBytes}
	cl := &Client{core: c, peer: d}
	cl.u, cl.id = c.userEntry(id.App, id.UID)
	cl.loggedIn.Store(true)
	d.cl = cl
	if c.httpDevs == nil {
		c.httpDevs = make(map[string]*HTTPDevice)
	}
	c.httpDevs[key] = d
	c.stats.online.Add(1)
	var first bool
	if c.cluster == nil {
		first = cl.u.add(cl)
	} else {
		first = c.cluster.addLocal(cl) // broker.go
	}
	if first {
		c.stats.usersOnline.Add(1)
	}
	if c.bus.active() {
		c.publish(Event{Topic: TopicLogin, App: cl.id.App, UID: cl.id.UID, Detail: "http"})
		if first {
			c.publish(Event{Topic: TopicOnline, App: cl.id.App, UID: cl.id.UID})
		}
	}
	return d
}

// HTTPDevices is the number of live HTTP devices.
func (c *Core) HTTPDevices() int {
	c.httpMu.Lock()
	defer c.httpMu.Unlock()
	return len(c.httpDevs)
}

// sweepHTTPDevices removes the devices nobody has read for HTTPEventsKeep.
func (c *Core) sweepHTTPDevices(now int64) {
	keep := c.cfg.HTTPEventsKeep.Milliseconds()
	var idle []*HTTPDevice
	c.httpMu.Lock()
	for k, d := range c.httpDevs {
		d.mu.Lock()
		if d.holders == 0 && now-d.lastUse >= keep {
			d.closed = true
			idle = append(idle, d)
			delete(c.httpDevs, k)
		}
		d.mu.Unlock()
	}
	c.httpMu.Unlock()
	for _, d := range idle {
		c.logout(d.cl, "http idle")
	}
}

// Send records one event (Peer). It never blocks; the oldest events are
// evicted past the ring's bounds.
func (d *HTTPDevice) Send(b []byte) bool {
	ev := append([]byte(nil), b...) // the Peer contract: b is not ours to keep
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.ring = append(d.ring, ev)
	d.bytes += len(ev)
	for n := len(d.ring) - d.head; n > 1 && (n > d.maxCount || d.bytes > d.maxBytes); n-- {
		d.bytes -= len(d.ring[d.head])
		d.ring[d.head] = nil
		d.head++
		d.first++
	}
	if d.head > 0 && d.head*2 >= len(d.ring) {
		n := copy(d.ring, d.ring[d.head:])
		clear(d.ring[n:])
		d.ring, d.head = d.ring[:n], 0
	}
	if d.wake != nil {
		close(d.wake)
		d.wake = nil
	}
	return true
}

// Close ends the device (Peer): the core calls it when the user's tokens
// are revoked. Readers are woken and told to resync.
func (d *HTTPDevice) Close(int, string) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	if d.wake != nil {
		close(d.wake)
		d.wake = nil
	}
	d.mu.Unlock()
	c := d.core
	c.httpMu.Lock()
	if c.httpDevs[d.key] == d {
		delete(c.httpDevs, d.key)
	}
	c.httpMu.Unlock()
	c.logout(d.cl, "http closed")
}

// RemoteAddr is the Peer's address: "http".
func (d *HTTPDevice) RemoteAddr() string { return "http" }

// Hold marks a read in progress: the device is not swept while one is.
// Every Hold (and HoldHTTPDevice) is paired with a Release.
func (d *HTTPDevice) Hold() {
	d.mu.Lock()
	d.holders++
	d.mu.Unlock()
}

// Holders is the number of reads in progress (see Hold).
func (d *HTTPDevice) Holders() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.holders
}

// Release ends a Hold; the device's keep time starts when the last one
// ends.
func (d *HTTPDevice) Release() {
	now := d.core.nowMS()
	d.mu.Lock()
	d.holders--
	d.lastUse = now
	d.mu.Unlock()
}

// Closed reports whether the device has ended (swept, or kicked by a
// token revocation).
func (d *HTTPDevice) Closed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// ErrBadCursor answers a cursor that is not one chatd gave out.
var ErrBadCursor = Errf(CodeBadRequest, "bad cursor: pass the cursor of the previous reply unchanged (or none to start)")

// Read returns up to max events after cursor (max <= 0: all kept). An
// empty cursor starts at the current end: no events, the cursor to read
// from next. When there is nothing after cursor, wait is closed at the
// next event (or when the device ends); it is nil otherwise.
func (d *HTTPDevice) Read(cursor string, max int) (r HTTPEvents, wait <-chan struct{}, err error) {
	var seq uint64
	ours := false
	if cursor != "" {
		ep, n, ok := strings.Cut(cursor, ".")
		if !ok || len(ep) != 12 {
			return r, nil, ErrBadCursor
		}
		seq, err = strconv.ParseUint(n, 10, 64)
		if err != nil || seq == 0 {
			return r, nil, ErrBadCursor
		}
		ours = ep == d.epoch
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	end := d.first + uint64(len(d.ring)-d.head) // seq of the next event
	switch {
	case d.closed: // kicked: the caller's token is checked again next time
		r.Resync = true
		seq = end
	case cursor == "":
		seq = end
	case !ours || seq < d.first:
		r.Resync = true
		seq = end
	case seq > end:
		return r, nil, ErrBadCursor
	}
	avail := int(end - seq)
	if max > 0 && avail > max {
		avail = max
	}
	if avail > 0 && !r.Resync {
		i := d.head + int(seq-d.first)
		r.Events = append([][]byte(nil), d.ring[i:i+avail]...)
		seq += uint64(avail)
	}
	r.Cursor = d.epoch + "." + strconv.FormatUint(seq, 10)
	if len(r.Events) == 0 && !r.Resync {
		if d.wake == nil {
			d.wake = make(chan struct{})
		}
		wait = d.wake
	}
	return r, wait, nil
}

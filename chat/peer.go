package chat

// Peer is the core's handle on one client connection, implemented by a
// transport (the reactor for WebSocket, httpapi for long-poll).
//
// Send queues one complete JSON text message (reply or event). It never
// blocks and is safe from any goroutine. b is immutable and may be shared by
// every recipient of a broadcast: the transport must not modify or keep it
// past writing it. Send returns false when the peer is closed or its outbound
// queue is over its limit (the transport then closes it as a slow consumer).
//
// Close starts closing the connection with a WebSocket close code and reason;
// safe from any goroutine, idempotent.
type Peer interface {
	Send(b []byte) bool
	Close(code int, reason string)
	RemoteAddr() string
}

// NowSender is implemented by a Peer that can write a message on the
// caller's goroutine. SendNow is Send, except that when the connection has
// nothing queued and nothing unwritten it writes b to the socket before it
// returns, instead of handing it to the connection's owner (an event loop,
// which would have to be woken). It never blocks: what the socket does not
// take is queued as Send would. The core calls it only for small
// deliveries the journal makes itself, where the hand-over costs more than
// the write.
type NowSender interface {
	SendNow(b []byte) bool
}

// sendTo sends b to p, with SendNow when now is set and p has it.
func sendTo(p Peer, b []byte, now bool) bool {
	if now {
		if ns, ok := p.(NowSender); ok {
			return ns.SendNow(b)
		}
	}
	return p.Send(b)
}

// Close codes the core uses (RFC 6455 §7.4 and the 4000–4999 private range).
const (
	CloseNormal       = 1000
	CloseGoingAway    = 1001
	ClosePolicy       = 1008
	CloseTooBig       = 1009
	CloseInternal     = 1011
	CloseTryAgain     = 1013
	CloseLoginTimeout = 4001 // no login within the handshake timeout
	CloseKicked       = 4002 // token revoked or user removed
)

// Acceptor is the core as a transport sees it. *Core implements it; transport
// tests use a fake.
type Acceptor interface {
	// Accept is called once per connection after the WebSocket handshake.
	Accept(p Peer) Handler
}

// Handler receives one connection's messages.
type Handler interface {
	// HandleMessage is called with each complete text message, in order, on
	// the connection's owning goroutine (an event loop). payload is borrowed:
	// it dies when HandleMessage returns. It must not block.
	HandleMessage(payload []byte)
	// HandleClose is called once when the connection is gone.
	HandleClose()
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Host calls that must run on one node of a cluster (docs/cluster.md,
// "Forwarding host calls"). Customer service and consultations live on
// the holder of the store lease "domains", the webhook dispatcher on the
// holder of "webhooks". A load balancer sends a host call to any node;
// a node that does not hold the route's lease checks the call as usual
// (signature, timestamp, nonce), then sends it whole (method, URI,
// headers, body, the client's address) over the broker to the holder
// (chat.Core.Forward) and writes the holder's answer (status, headers,
// body) back.
//
// The holder runs the call through serve like any call it receives, auth
// included: the node that acts on a call checks it, and its nonce cache
// sees every call of the routes it holds, so a signed call replayed
// through another node is refused there too. (The origin's check only
// keeps unsigned traffic off the broker.) A forwarded call is marked as
// such: a node that gets one for a lease it no longer holds answers
// unavailable instead of forwarding it again.

// runsOn says where a route runs in a cluster.
type runsOn uint8

const (
	// onAnyNode: any node serves it: its data is in the shared store, or
	// it is about this node (admin, metrics, devices, uploads, streams).
	onAnyNode runsOn = iota + 1
	// onDomains: the holder of the "domains" lease (customer service and
	// consultations).
	onDomains
	// onWebhooks: the holder of the "webhooks" lease (the dispatcher's
	// memory).
	onWebhooks
	// onDomainsSession: the holder of the "domains" lease when the call
	// acts on a customer-service or consultation session (the handler
	// looks: chat.Core.DomainSession, and calls elsewhere), else any node.
	onDomainsSession
)

// routeRuns classifies every endpoint; TestRouteClasses fails on an
// endpoint left out, and on a service or consultation route that is not
// onDomains.
var routeRuns = [epCount]runsOn{
	epHealth:            onAnyNode,
	epAdminApps:         onAnyNode,
	epAdminStatus:       onAnyNode,
	epAdminShutdown:     onAnyNode,
	epAdminBackup:       onAnyNode,
	epAppSettings:       onAnyNode,
	epUsers:             onAnyNode,
	epUser:              onAnyNode,
	epUserTokens:        onAnyNode,
	epTokensRevoke:      onAnyNode,
	epMessages:          onDomainsSession, // appSend
	epGroups:            onAnyNode,
	epHistory:           onAnyNode,
	epClient:            onAnyNode, // a device's actions: the core forwards those of the domains
	epMetrics:           onAnyNode,
	epPprof:             onAnyNode,
	epMsgTrace:          onAnyNode,
	epSubscribe:         onAnyNode,
	epRecall:            onAnyNode,
	epGroupOps:          onAnyNode,
	epBroadcast:         onAnyNode,
	epService:           onDomains,
	epModeration:        onAnyNode,
	epAppLimits:         onAnyNode,
	epWebhooks:          onAnyNode,
	epWebhookUpdate:     onAnyNode,
	epWebhookDelete:     onAnyNode,
	epWebhookDeliveries: onAnyNode, // read from the store
	epWebhookRedeliver:  onWebhooks,
	epBeforeSend:        onAnyNode,
	epConsultations:     onDomains,
	epConsultation:      onDomains,
	epConsultRecord:     onDomains,
	epConsultRecords:    onDomains,
	epConsultant:        onDomains,
	epEvents:            onAnyNode,
	epEventStream:       onAnyNode,
	epRecv:              onAnyNode,
	epUpload:            onAnyNode,
	epAppUpload:         onAnyNode,
	epFile:              onAnyNode,
	epFileURL:           onAnyNode,
	epContactsImport:    onAnyNode,
	epUserSessions:      onAnyNode,
	epUserUnread:        onAnyNode,
	epUserDelete:        onAnyNode,
	epDemo:              onAnyNode,
	epDemoAPI:           onAnyNode,
}

// The leases and what moves with them (error messages).
var leaseOf = [...]struct{ name, what string }{
	onDomains:  {"domains", "customer service and consultations"},
	onWebhooks: {"webhooks", "the webhook deliveries"},
}

// fwdTopic names the HTTP calls among forwarded requests (chat.Forward).
const fwdTopic = "http"

// forwardTimeout bounds a forwarded call's wait; a variable for the tests.
var forwardTimeout = 15 * time.Second

// fwdCounters count forwarded calls.
type fwdCounters struct {
	sent   atomic.Uint64 // calls this node forwarded and got an answer for
	served atomic.Uint64 // calls forwarded to this node that it served
	failed atomic.Uint64 // calls this node could not forward (answered 413/503)
}

// elsewhere runs a call of a lease's route on the lease's holder when that
// is another node: it reports whether it answered the call (forwarded,
// or refused). from is the node that forwarded the call to this one ("":
// a call from a client).
func (s *Server) elsewhere(ctx *fasthttp.RequestCtx, on runsOn, from string) bool {
	lease := leaseOf[on]
	for try := 0; ; try++ {
		node, self, err := s.core.LeaseNode(s.reqCtx, lease.name)
		if err != nil {
			s.fail(ctx, err)
			return true
		}
		if self {
			return false
		}
		if from != "" {
			if try == 0 { // what this node knows may be a second old
				s.core.ForgetLeaseNode(lease.name)
				continue
			}
			s.fail(ctx, chat.Errf(chat.CodeUnavailable, "node "+s.core.Node()+" got this call from node "+from+
				" as the holder of the \""+lease.name+"\" lease, but node "+node+" holds it now: "+lease.what+
				" are moving; a call is forwarded once: retry"))
			return true
		}
		fctx, cancel := context.WithTimeout(s.reqCtx, forwardTimeout)
		out, err := s.core.Forward(fctx, node, fwdTopic, appendFwdRequest(nil, ctx))
		cancel()
		if err == nil {
			if e := readFwdResponse(&ctx.Response, out); e != nil {
				s.fail(ctx, e)
			}
			s.fwd.sent.Add(1)
			return true
		}
		s.core.ForgetLeaseNode(lease.name)
		if errors.Is(err, chat.ErrForwardUnknown) && try == 0 {
			continue // not sent: the lease may have moved already
		}
		s.fwd.failed.Add(1)
		s.fail(ctx, fwdError(err, lease.name, lease.what, node))
		return true
	}
}

// fwdError is the answer to a call that could not be forwarded.
func fwdError(err error, lease, what, node string) *chat.Error {
	on := what + " run on node " + node + " (the holder of the \"" + lease + "\" lease), "
	switch {
	case errors.Is(err, chat.ErrForwardTooLarge):
		return chat.Errf(chat.CodeTooLarge, on+"and this call or its answer is over the "+
			strconv.Itoa(chat.ForwardMaxSize>>20)+" MiB a call forwarded between nodes may carry")
	case errors.Is(err, chat.ErrForwardUnknown), errors.Is(err, chat.ErrForwardGone):
		return chat.Errf(chat.CodeUnavailable, on+"which left the cluster; they are moving to another node: retry in a few seconds")
	case errors.Is(err, chat.ErrForwardTimeout):
		return chat.Errf(chat.CodeUnavailable, on+"which did not answer within "+forwardTimeout.String()+
			"; the call may have been done: check before retrying")
	case errors.Is(err, chat.ErrForwardBusy):
		return chat.Errf(chat.CodeUnavailable, on+"which is busy with "+strconv.Itoa(chat.ForwardInFlight)+
			" calls from this node; retry")
	case errors.Is(err, chat.ErrForwardNoHandler):
		return chat.Errf(chat.CodeUnavailable, on+"which does not take forwarded calls yet (starting, or an older chatd); retry")
	}
	return chat.Errf(chat.CodeUnavailable, on+"and forwarding the call to it failed: "+err.Error())
}

// serveForwarded serves a call forwarded by node origin (chat.Forward's
// handler): the call goes through serve like a client's, auth included.
func (s *Server) serveForwarded(_ context.Context, origin string, req []byte) ([]byte, error) {
	rc := new(fasthttp.RequestCtx)
	var r fasthttp.Request
	remote, err := readFwdRequest(&r, req)
	if err != nil {
		return nil, err
	}
	rc.Init(&r, remote, nil)
	s.serve(rc, origin)
	s.fwd.served.Add(1)
	return appendFwdResponse(nil, &rc.Response), nil
}

// hopHeaders are not forwarded: they are about one connection, or
// computed again from the body.
func hopHeader(k []byte) bool {
	switch string(bytes.ToLower(k)) {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
		"content-length", "date", "server":
		return true
	}
	return false
}

// A forwarded request: version, method, request URI (as received: the
// signature covers it), client address, headers, body.
// A forwarded response: version, status, headers, body.
const fwdVersion = 1

var errFwdMalformed = errors.New("httpapi: malformed forwarded call")

// errNotForwarded answers a forwarded call of a route any node serves
// (no node forwards those).
var errNotForwarded = chat.Errf(chat.CodeForbidden, "this route is not forwarded between nodes")

func appendFwdRequest(b []byte, ctx *fasthttp.RequestCtx) []byte {
	b = append(b, fwdVersion)
	b = appendBytes(b, ctx.Method())
	b = appendBytes(b, ctx.Request.Header.RequestURI())
	b = appendBytes(b, []byte(ctx.RemoteAddr().String()))
	b = appendHeaders(b, ctx.Request.Header.All())
	return append(b, ctx.PostBody()...)
}

func readFwdRequest(r *fasthttp.Request, b []byte) (net.Addr, error) {
	d := fwdReader{b: b}
	if d.byte1() != fwdVersion {
		return nil, errFwdMalformed
	}
	method, uri, remote := d.bytes(), d.bytes(), d.bytes()
	r.Header.SetMethodBytes(method)
	r.Header.SetRequestURIBytes(uri)
	d.headers(r.Header.Add)
	if d.bad {
		return nil, errFwdMalformed
	}
	r.SetBody(d.b)
	ap, err := netip.ParseAddrPort(string(remote))
	if err != nil {
		return nil, errFwdMalformed
	}
	return net.TCPAddrFromAddrPort(ap), nil
}

func appendFwdResponse(b []byte, resp *fasthttp.Response) []byte {
	b = append(b, fwdVersion)
	b = binary.AppendUvarint(b, uint64(resp.StatusCode()))
	b = appendHeaders(b, resp.Header.All())
	return append(b, resp.Body()...)
}

func readFwdResponse(resp *fasthttp.Response, b []byte) *chat.Error {
	d := fwdReader{b: b}
	if d.byte1() != fwdVersion {
		return chat.Errf(chat.CodeInternal, "the holder's answer is malformed")
	}
	status := d.uvarint()
	resp.Header.Del(fasthttp.HeaderContentType)
	d.headers(resp.Header.Add)
	if d.bad || status < 100 || status > 599 {
		return chat.Errf(chat.CodeInternal, "the holder's answer is malformed")
	}
	resp.SetStatusCode(int(status))
	resp.SetBody(d.b)
	return nil
}

// appendHeaders appends the count and the name/value pairs, hop headers
// left out.
func appendHeaders(b []byte, all func(func(k, v []byte) bool)) []byte {
	n := 0
	var hs []byte
	for k, v := range all {
		if hopHeader(k) {
			continue
		}
		hs = appendBytes(appendBytes(hs, k), v)
		n++
	}
	return append(binary.AppendUvarint(b, uint64(n)), hs...)
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// fwdReader decodes a forwarded call or answer.
type fwdReader struct {
	b   []byte
	bad bool
}

func (r *fwdReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *fwdReader) byte1() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *fwdReader) bytes() []byte {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *fwdReader) headers(add func(k, v string)) {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
		return
	}
	for range n {
		k, v := r.bytes(), r.bytes()
		if r.bad {
			return
		}
		add(string(k), string(v))
	}
}

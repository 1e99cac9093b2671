// Package webhook is the HTTP side of chatd's webhooks: it implements
// chat.WebhookSender with net/http, and enforces the target-host rules
// (docs/webhooks.md, "Target hosts"): no loopback, link-local, private,
// unspecified or multicast addresses unless a setting allows them, checked
// on the address actually dialled (after DNS, so a name that resolves to
// 127.0.0.1 — or starts to, DNS rebinding — is refused too); an optional
// allow-list of host names; redirects only to the same host; no proxy
// from the environment (it would dial for us, past the checks).
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"chatd/chat"
)

// Config holds the target-host rules.
type Config struct {
	// AllowLoopback admits 127.0.0.0/8 and ::1 (tests, a receiver on the
	// same machine).
	AllowLoopback bool
	// AllowPrivate admits the private ranges (10/8, 172.16/12,
	// 192.168/16, 100.64/10, fc00::/7) and link-local ones (169.254/16,
	// where cloud metadata services live, and fe80::/10).
	AllowPrivate bool
	// AllowedHosts, when not empty, is the only hosts endpoints may name:
	// "example.com" admits that host, ".example.com" its subdomains.
	AllowedHosts []string
	// UserAgent is sent with every request. Empty means "chatd-webhook".
	UserAgent string
}

// Sender makes webhook deliveries. It is safe for concurrent use.
type Sender struct {
	cfg    Config
	client *http.Client
}

var _ chat.WebhookSender = (*Sender)(nil)

// New returns a Sender that applies cfg.
func New(cfg Config) *Sender {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "chatd-webhook"
	}
	s := &Sender{cfg: cfg}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: s.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       60 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 0, // the attempt's context bounds it
		ForceAttemptHTTP2:     true,
	}
	s.client = &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("more than 3 redirects")
		}
		if !strings.EqualFold(req.URL.Hostname(), via[0].URL.Hostname()) {
			return fmt.Errorf("redirect to another host (%s) refused", req.URL.Hostname())
		}
		return nil
	}}
	return s
}

// Send POSTs body to rawURL with the delivery's headers and returns the
// response's status code.
func (s *Sender) Send(ctx context.Context, rawURL string, h chat.WebhookHeaders, body []byte) (int, error) {
	code, _, err := s.Call(ctx, rawURL, h, body)
	if code != 0 {
		return code, nil // answered: a body cut short does not matter
	}
	return 0, err
}

// Call is Send that also returns up to 64 KiB of the answer's body.
func (s *Sender) Call(ctx context.Context, rawURL string, h chat.WebhookHeaders, body []byte) (int, []byte, error) {
	if err := s.CheckURL(rawURL); err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	req.Header.Set("X-Chatd-Delivery", h.DeliveryID)
	req.Header.Set("X-Chatd-Event", h.Event)
	req.Header.Set("X-Chatd-Timestamp", strconv.FormatInt(h.Timestamp, 10))
	req.Header.Set("X-Chatd-Signature", h.Signature)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	// Read up to 64 KiB: the hook's answer, or (for a delivery, whose
	// answer means nothing to chatd) so the connection can be reused.
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, answer, nil
}

// CheckURL applies the host allow-list, and the address rules to a URL
// whose host is an IP literal (names are checked when dialled).
func (s *Sender) CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if len(s.cfg.AllowedHosts) > 0 && !s.allowedHost(host) {
		return fmt.Errorf("host %s is not in webhook_hosts", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return s.checkIP(ip)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return s.checkIP(netip.MustParseAddr("127.0.0.1"))
	}
	return nil
}

func (s *Sender) allowedHost(host string) bool {
	for _, a := range s.cfg.AllowedHosts {
		a = strings.ToLower(a)
		if host == a || strings.HasPrefix(a, ".") && strings.HasSuffix(host, a) {
			return true
		}
	}
	return false
}

// control runs for every connection the client dials, with the resolved
// address: the check DNS cannot get around.
func (s *Sender) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: unexpected dial address %q", address)
	}
	return s.checkIP(ap.Addr())
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func (s *Sender) checkIP(ip netip.Addr) error {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		if !s.cfg.AllowLoopback {
			return fmt.Errorf("address %s is loopback; refused unless webhook_loopback is set", ip)
		}
	case ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return fmt.Errorf("address %s cannot receive webhooks", ip)
	case ip.IsLinkLocalUnicast() || ip.IsPrivate() || cgnat.Contains(ip):
		if !s.cfg.AllowPrivate {
			return fmt.Errorf("address %s is private or link-local; refused unless webhook_private is set", ip)
		}
	}
	return nil
}

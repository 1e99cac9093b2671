package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

func init() {
	register(&command{
		name:       "subscribe",
		args:       "[--json] [FILTER…]",
		summary:    `stream live events: subscribe all | message serverInfo | "all;uid=alice" (Ctrl-C stops)`,
		positional: true,
		setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
			return subscribe
		},
	})
}

// Reconnect backoff after the stream breaks.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// streamLine is one line of the stream: an event or a control line
// (hello, heartbeat, dropped, bye; see docs/operations.md).
type streamLine struct {
	chat.Event
	Count     uint64   `json:"count"`             // dropped
	Reason    string   `json:"reason"`            // bye
	Filters   []string `json:"filters"`           // hello
	Version   string   `json:"version"`           // hello
	Heartbeat float64  `json:"heartbeat_seconds"` // hello
}

// subscribe streams events until ctx ends (Ctrl-C), reconnecting whenever
// the stream breaks. Filters (positional arguments, OR-ed) are checked
// here first so that a typo is a usage error, not a retry loop.
func subscribe(ctx context.Context, e *env) error {
	filters := e.args
	if len(filters) == 0 {
		filters = []string{"all"}
	}
	for _, f := range filters {
		if strings.HasPrefix(f, "-") {
			return usagef("subscribe: flag %s after the filters; put flags first: chatctl subscribe --json FILTER…", f)
		}
		if _, err := chat.ParseFilter(f); err != nil {
			msg := err.Error()
			var ce *chat.Error
			if errors.As(err, &ce) {
				msg = ce.Message
			}
			return usagef("subscribe: filter %q: %s", f, msg)
		}
	}
	s := &subscriber{
		e:     e,
		path:  "/admin/v1/subscribe?" + url.Values{"filter": filters}.Encode(),
		names: strings.Join(filters, " "),
		out:   &printer{w: e.stdout, json: e.json, tty: isTerminal(e.stdout)},
		http: &http.Client{Transport: &http.Transport{ // no overall timeout: the answer is endless
			DialContext:           (&net.Dialer{Timeout: e.conn.timeout}).DialContext,
			ResponseHeaderTimeout: e.conn.timeout,
			DisableKeepAlives:     true,
		}},
	}
	return s.run(ctx)
}

// subscriber is one `chatctl subscribe`: its settings and reconnect state.
type subscriber struct {
	e     *env
	path  string
	names string
	out   *printer
	http  *http.Client
}

// fatalError is a refusal that retrying cannot fix (bad key, forbidden).
type fatalError struct{ error }

func (s *subscriber) run(ctx context.Context) error {
	backoff := firstBackoff
	connected := false   // a stream has been open at least once
	var lostAt time.Time // when the current outage began; zero while connected
	for {
		open, err := s.once(ctx, func(base string) {
			if lostAt.IsZero() {
				fmt.Fprintf(s.e.stderr, "subscribed to %s on %s (Ctrl-C to stop)\n", s.names, base)
			} else {
				fmt.Fprintf(s.e.stderr, "reconnected to %s after %s\n", base, time.Since(lostAt).Round(100*time.Millisecond))
			}
			connected, lostAt, backoff = true, time.Time{}, firstBackoff
		})
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
		var fe fatalError
		if errors.As(err, &fe) || !connected {
			return err
		}
		if open {
			lostAt = time.Now()
			fmt.Fprintf(s.e.stderr, "disconnected: %v; reconnecting…\n", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// once opens the stream and prints it until it ends. onOpen is called
// with the server's URL once the stream is open; open reports whether it
// was. The error says why the stream ended (or could not start).
func (s *subscriber) once(parent context.Context, onOpen func(base string)) (open bool, err error) {
	// The data folder is read again on every attempt: a restarted server
	// may listen on another port.
	c, err := s.e.client(true, false)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return false, fatalError{err}
		}
		return false, err
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+s.path, nil)
	if err != nil {
		return false, fatalError{err}
	}
	req.Header.Set("Accept", "application/x-ndjson")
	apiclient.SignRequest(req, c.AdminKey, nil, time.Now())
	resp, err := s.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, refusal(resp)
	}
	onOpen(c.BaseURL)

	// A silent stream is a dead one: the server writes a heartbeat every
	// heartbeat_seconds (15 s by default).
	silence := 50 * time.Second
	watchdog := time.AfterFunc(silence, func() { cancel(errSilent) })
	defer watchdog.Stop()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err == nil {
			watchdog.Reset(silence)
			var l streamLine
			if jerr := json.Unmarshal(line, &l); jerr != nil {
				return true, fmt.Errorf("server sent a line that is not JSON: %.80q", line)
			}
			if l.Topic == "hello" && l.Heartbeat > 0 {
				silence = time.Duration(3*l.Heartbeat*float64(time.Second)) + 5*time.Second
				watchdog.Reset(silence)
			}
			if perr := s.out.print(line, &l); perr != nil {
				return true, fatalError{fmt.Errorf("write output: %w", perr)} // e.g. a closed pipe
			}
			if l.Topic == "bye" {
				return true, errors.New(l.Reason)
			}
			continue
		}
		switch {
		case parent.Err() != nil:
			return true, parent.Err()
		case context.Cause(ctx) == errSilent:
			return true, fmt.Errorf("no data from the server for %s", silence)
		case errors.Is(err, io.EOF):
			return true, errors.New("the server closed the stream")
		}
		return true, fmt.Errorf("connection lost: %w", err)
	}
}

// errSilent cancels a stream that stopped sending heartbeats.
var errSilent = errors.New("stream silent")

// refusal turns a non-200 answer into an error: 4xx other than 429 is
// fatal (bad filter, key or address), anything else is retried.
func refusal(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	ae := &apiclient.APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	if json.Unmarshal(b, &env) == nil && env.Error != nil {
		ae.Code, ae.Message = env.Error.Code, env.Error.Message
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return fatalError{ae}
	}
	return ae
}

// printer writes the stream: raw lines under --json, else one readable
// line per event and a serverInfo block, redrawn in place on a terminal.
type printer struct {
	w    io.Writer
	json bool
	tty  bool
	// infoLines is the height of the serverInfo blocks when they are the
	// last thing printed (a terminal redraws them in place), else 0; infos
	// are those blocks by node (one on a single node; a cluster's nodes
	// each send theirs), redrawn together in node order.
	infoLines int
	infos     map[string][]byte
	buf       bytes.Buffer
}

// print writes one line of the stream.
func (p *printer) print(raw []byte, l *streamLine) error {
	if p.json {
		_, err := p.w.Write(raw)
		return err
	}
	p.buf.Reset()
	switch l.Topic {
	case "hello", "heartbeat", "bye":
		return nil // the subscriber reports connection changes on stderr
	case chat.TopicServerInfo:
		if l.Info == nil {
			return nil
		}
		if !p.tty {
			formatInfo(&p.buf, l.Time, l.Node, l.Info)
			break
		}
		if p.infoLines > 0 {
			fmt.Fprintf(&p.buf, "\x1b[%dF\x1b[J", p.infoLines) // up to the blocks' start, clear below
		} else {
			p.infos = map[string][]byte{}
		}
		var blk bytes.Buffer
		formatInfo(&blk, l.Time, l.Node, l.Info)
		p.infos[l.Node] = blk.Bytes()
		p.infoLines = 0
		for _, node := range slices.Sorted(maps.Keys(p.infos)) {
			p.buf.Write(p.infos[node])
			p.infoLines += bytes.Count(p.infos[node], []byte{'\n'})
		}
	default:
		formatEvent(&p.buf, l)
		p.infoLines = 0
	}
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// stamp is an event's local time of day, to the millisecond.
func stamp(ms int64) string { return time.UnixMilli(ms).Format("15:04:05.000") }

// formatEvent writes one line for an event or a dropped notice:
//
//	12:00:01.123 message  shop  alice → [bob]  s42#118 text "hi"
func formatEvent(b *bytes.Buffer, l *streamLine) {
	if l.Topic == "dropped" {
		fmt.Fprintf(b, "%s dropped  missed %d events: this subscriber was too slow\n", stamp(l.Time), l.Count)
		return
	}
	fmt.Fprintf(b, "%s %s%-8s %s  %s", stamp(l.Time), nodeTag(l.Node), l.Topic, orDash(l.App), orDash(l.UID))
	switch l.Topic {
	case chat.TopicMessage:
		b.WriteString(" → ")
		writeUIDs(b, others(l.Members, l.UID))
		if m := l.Message; m != nil {
			fmt.Fprintf(b, "  s%d#%d %s %s", m.Session, m.Seq, m.Type, contentText(m.Type, m.Content))
		}
	case chat.TopicLogin:
		if l.Detail != "" {
			b.WriteString("  from " + l.Detail)
		}
	case chat.TopicModeration:
		b.WriteString("  " + l.Type)
		if l.Type == "ban" || l.Type == "mute" {
			b.WriteString(" " + untilText(l.Until))
		}
		if l.Detail != "" {
			b.WriteString("  " + l.Detail)
		}
	case chat.TopicError:
		if l.Error != nil {
			fmt.Fprintf(b, "  %s: %s", l.Error.Code, l.Error.Message)
		}
		if l.Detail != "" {
			b.WriteString("  (" + l.Detail + ")")
		}
	case chat.TopicService:
		if v := l.Service; v != nil {
			fmt.Fprintf(b, "  %s s%d %s", v.Shop, v.Session, v.Type)
			if v.Agent != "" {
				b.WriteString(" agent " + v.Agent)
			}
			if v.Position > 0 {
				fmt.Fprintf(b, " position %d", v.Position)
			}
			if v.Note != "" {
				fmt.Fprintf(b, " note %q", v.Note)
			}
		}
	default: // session, group, logout, online, offline and topics added later
		if l.Session != 0 {
			fmt.Fprintf(b, "  s%d", l.Session)
		}
		if l.Type != "" {
			b.WriteString(" " + l.Type)
		}
		if len(l.Members) > 0 {
			b.WriteByte(' ')
			writeUIDs(b, l.Members)
		}
		if l.Detail != "" {
			b.WriteString("  " + l.Detail)
		}
		if c := l.Consult; c != nil {
			formatConsult(b, c)
		}
	}
	b.WriteByte('\n')
}

// nodeTag is "[n2] " for an event of cluster node n2 (empty on a single
// node).
func nodeTag(node string) string {
	if node == "" {
		return ""
	}
	return "[" + node + "] "
}

// formatInfo writes the serverInfo block and returns its height in lines.
func formatInfo(b *bytes.Buffer, ms int64, node string, in *chat.ServerInfo) int {
	fmt.Fprintf(b, "%s %sserverInfo  chatd %s  up %s\n", stamp(ms), nodeTag(node), orDash(in.Version),
		(time.Duration(in.UptimeSeconds) * time.Second).String())
	fmt.Fprintf(b, "  conns %d  users online %d  msgs in %s/s  deliveries %s/s  net in %s/s  out %s/s\n",
		in.Conns, in.UsersOnline, count(in.MsgsInPerSec), count(in.MsgsOutPerSec), size(in.BytesInPerSec), size(in.BytesOutPerSec))
	fmt.Fprintf(b, "  journal %d  last commit %.2f ms  heap %s  rss %s  goroutines %d  gc %d (last pause %.2f ms)\n",
		in.JournalDepth, in.LastCommitMS, size(float64(in.HeapBytes)), size(float64(in.RSSBytes)), in.Goroutines, in.GCCount, in.GCPauseMS)
	return 3
}

// count renders a rate compactly: 0, 0.5, 7.0, 120, 4.5k, 1.2M.
func count(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v < 1e6:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
}

// size renders bytes: 512 B, 1.5 KiB, 45.0 MiB, 2.0 GiB.
func size(v float64) string {
	const k = 1024
	switch {
	case v < k:
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	case v < k*k:
		return strconv.FormatFloat(v/k, 'f', 1, 64) + " KiB"
	case v < k*k*k:
		return strconv.FormatFloat(v/(k*k), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatFloat(v/(k*k*k), 'f', 1, 64) + " GiB"
}

// maxUIDs is how many uids a line lists before "+N more".
const maxUIDs = 5

// writeUIDs writes [a b c +7 more].
func writeUIDs(b *bytes.Buffer, uids []string) {
	b.WriteByte('[')
	for i, u := range uids {
		if i == maxUIDs {
			fmt.Fprintf(b, " +%d more", len(uids)-maxUIDs)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(u)
	}
	b.WriteByte(']')
}

// others is uids without self (a message's recipients).
func others(uids []string, self string) []string {
	out := make([]string, 0, len(uids))
	for _, u := range uids {
		if u != self {
			out = append(out, u)
		}
	}
	return out
}

// maxContent is how much of a message's content a line shows.
const maxContent = 80

// contentText is a message's content for one line: the quoted text of a
// text message, else the compact JSON, clipped.
func contentText(typ string, content json.RawMessage) string {
	if typ == "text" {
		var t struct {
			Text *string `json:"text"`
		}
		if json.Unmarshal(content, &t) == nil && t.Text != nil {
			return strconv.Quote(clipRunes(*t.Text, maxContent))
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, content) != nil {
		return clipRunes(string(content), maxContent)
	}
	return clipRunes(b.String(), maxContent)
}

// clipRunes cuts s to n runes, marking the cut with "…".
func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// formatConsult adds a consult event's clock and, at the end, its bill:
//
//	…  s5 time_up [lawyer cust]  ended  0s left  time_up  billed 1200s: 4000 CNY
func formatConsult(b *bytes.Buffer, c *chat.ConsultEvent) {
	fmt.Fprintf(b, "  %ds left", c.RemainingSeconds)
	if c.Warning > 0 {
		fmt.Fprintf(b, "  warning at %ds", c.Warning)
	}
	if c.Seconds > 0 {
		fmt.Fprintf(b, "  +%ds", c.Seconds)
	}
	if c.Reason != 0 {
		b.WriteString("  " + c.Reason.String())
	}
	if r := c.Record; r != nil {
		fmt.Fprintf(b, "  billed %ds: %d", r.BilledSeconds, r.Amount)
		if r.Currency != "" {
			b.WriteString(" " + r.Currency)
		}
	}
}

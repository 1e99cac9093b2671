package wsproto

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"testing"
)

// The conformance table follows the Autobahn TestSuite's fuzzingclient
// sections 1-7, 9 and 10 (the server side of each case), named after the
// RFC 6455 section they test and the Autobahn case number. Every case runs
// with the stream fed whole, byte by byte and in uneven chunks (Autobahn's
// "chopped" variants), so frame and UTF-8 state crossing read boundaries is
// covered everywhere.

func text(p string) wire    { return wire{fin: true, op: OpText, payload: p} }
func binary_(p string) wire { return wire{fin: true, op: OpBinary, payload: p} }
func ping(p string) wire    { return wire{fin: true, op: OpPing, payload: p} }
func pong(p string) wire    { return wire{fin: true, op: OpPong, payload: p} }
func frag(op Opcode, p string, fin bool) wire {
	return wire{fin: fin, op: op, payload: p}
}
func closeFrame(code uint16, reason string) wire {
	return wire{fin: true, op: OpClose, payload: closePayload(code, reason)}
}
func closePayload(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

func mText(p string) msg { return msg{kind: KindText, payload: p} }
func mBin(p string) msg  { return msg{kind: KindBinary, payload: p} }
func mPing(p string) msg { return msg{kind: KindPing, payload: p} }
func mPong(p string) msg { return msg{kind: KindPong, payload: p} }
func mClose(code CloseCode, reason string) msg {
	m := msg{kind: KindClose, code: code, reason: reason}
	if code != CloseNoStatus {
		m.payload = closePayload(uint16(code), reason)
	}
	return m
}

// fragments splits p into frames of size bytes (the first with op, the rest
// continuations; the last final).
func fragments(op Opcode, p string, size int) []wire {
	var out []wire
	for first := true; first || len(p) > 0; first = false {
		n := min(size, len(p))
		f := wire{op: OpContinuation, payload: p[:n], fin: n == len(p)}
		if first {
			f.op = op
		}
		out = append(out, f)
		p = p[n:]
	}
	return out
}

// conformanceTables lists every conformance case table; the fuzz targets
// seed their corpus from all of them.
var conformanceTables = []func() []conformanceCase{
	conformanceFraming, conformancePingPong, conformanceReservedBits, conformanceOpcodes,
	conformanceFragmentation, conformanceUTF8, conformanceClose, conformanceLimits,
	conformanceDeflate,
}

type conformanceCase struct {
	name       string
	frames     []wire
	raw        []byte // appended after frames: hand-made bytes
	maxMessage int32
	deflate    bool
	want       []msg
	wantCode   CloseCode // 0: the stream must end cleanly
}

func runConformance(t *testing.T, cases []conformanceCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := append(encode(tc.frames...), tc.raw...)
			chunks := []int{0, 1, 7, 1300}
			if len(stream) > 64<<10 {
				chunks = []int{0, 1300, 65536}
			}
			for _, chunk := range chunks {
				r := Reader{MaxMessage: tc.maxMessage, Deflate: tc.deflate}
				got, err := readAll(t, &r, stream, chunk)
				if code := closeCode(err); code != tc.wantCode || (err != nil && code == 0) {
					t.Fatalf("chunk=%d: error %v (code %d), want close code %d", chunk, err, code, tc.wantCode)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("chunk=%d: messages\n got %v\nwant %v", chunk, got, tc.want)
				}
			}
		})
	}
}

// conformanceFraming is the case table of TestConformanceFraming.
func conformanceFraming() []conformanceCase { // Autobahn 1.x
	var cases []conformanceCase
	for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		p := repeat("*", n)
		cases = append(cases,
			conformanceCase{
				name:   "5.2-payload-length/autobahn-1.1." + strconv.Itoa(i+1) + "/text-" + strconv.Itoa(n),
				frames: []wire{text(p)},
				want:   []msg{mText(p)},
			},
			conformanceCase{
				name:   "5.2-payload-length/autobahn-1.2." + strconv.Itoa(i+1) + "/binary-" + strconv.Itoa(n),
				frames: []wire{binary_(repeat("\xfe", n))},
				want:   []msg{mBin(repeat("\xfe", n))},
			})
	}
	cases = append(cases,
		conformanceCase{
			name:   "5.2-payload-length/non-minimal-16-bit-accepted",
			frames: []wire{{fin: true, op: OpText, payload: "Hello", lenBytes: 2}},
			want:   []msg{mText("Hello")},
		},
		conformanceCase{
			name:   "5.2-payload-length/non-minimal-64-bit-accepted",
			frames: []wire{{fin: true, op: OpBinary, payload: "Hello", lenBytes: 8}},
			want:   []msg{mBin("Hello")},
		},
		conformanceCase{
			name:     "5.2-payload-length/64-bit-most-significant-bit-set",
			raw:      []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4},
			wantCode: CloseProtocolError,
		},
		conformanceCase{
			name:     "5.2-payload-length/huge-declared-length-fails-before-payload",
			raw:      []byte{0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4},
			wantCode: CloseMessageTooBig,
		},
		conformanceCase{
			name:     "5.1-masking/unmasked-text",
			frames:   []wire{{fin: true, op: OpText, payload: "Hello", unmasked: true}},
			wantCode: CloseProtocolError,
		},
		conformanceCase{
			name:     "5.1-masking/unmasked-ping",
			frames:   []wire{{fin: true, op: OpPing, unmasked: true}},
			wantCode: CloseProtocolError,
		},
		conformanceCase{
			name:     "5.1-masking/unmasked-close",
			frames:   []wire{{fin: true, op: OpClose, payload: closePayload(1000, ""), unmasked: true}},
			wantCode: CloseProtocolError,
		},
		conformanceCase{
			name:     "5.1-masking/unmasked-after-valid-frame",
			frames:   []wire{text("ok"), {fin: true, op: OpBinary, payload: "x", unmasked: true}},
			want:     []msg{mText("ok")},
			wantCode: CloseProtocolError,
		},
	)
	return cases
}

func TestConformanceFraming(t *testing.T) { runConformance(t, conformanceFraming()) }

// conformancePingPong is the case table of TestConformancePingPong.
func conformancePingPong() []conformanceCase { // Autobahn 2.x
	bin := "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
	tenPings := make([]wire, 10)
	tenWant := make([]msg, 10)
	for i := range tenPings {
		p := "payload-" + strconv.Itoa(i)
		tenPings[i] = ping(p)
		tenWant[i] = mPing(p)
	}
	return []conformanceCase{
		{name: "5.5.2-ping/autobahn-2.1/empty", frames: []wire{ping("")}, want: []msg{mPing("")}},
		{name: "5.5.2-ping/autobahn-2.2/text-payload", frames: []wire{ping("Hello, world!")}, want: []msg{mPing("Hello, world!")}},
		{name: "5.5.2-ping/autobahn-2.3/binary-payload", frames: []wire{ping(bin)}, want: []msg{mPing(bin)}},
		{name: "5.5.2-ping/autobahn-2.4/125-bytes", frames: []wire{ping(repeat("\xfe", 125))}, want: []msg{mPing(repeat("\xfe", 125))}},
		{name: "5.5-control/autobahn-2.5/ping-126-bytes", frames: []wire{ping(repeat("\xfe", 126))}, wantCode: CloseProtocolError},
		{name: "5.5-control/ping-126-bytes-fails-on-header", raw: []byte{0x89, 0x80 | 126, 0, 126, 1, 2, 3, 4}, wantCode: CloseProtocolError},
		{name: "5.5.3-pong/autobahn-2.7/unsolicited-empty", frames: []wire{pong("")}, want: []msg{mPong("")}},
		{name: "5.5.3-pong/autobahn-2.8/unsolicited-payload", frames: []wire{pong("unsolicited pong payload")}, want: []msg{mPong("unsolicited pong payload")}},
		{name: "5.5.3-pong/autobahn-2.9/pong-then-ping", frames: []wire{pong("unsolicited"), ping("ping payload")}, want: []msg{mPong("unsolicited"), mPing("ping payload")}},
		{name: "5.5.2-ping/autobahn-2.10/ten-pings", frames: tenPings, want: tenWant},
	}
}

func TestConformancePingPong(t *testing.T) { runConformance(t, conformancePingPong()) }

// conformanceReservedBits is the case table of TestConformanceReservedBits.
func conformanceReservedBits() []conformanceCase { // Autobahn 3.x
	return []conformanceCase{
		{name: "5.2-rsv/autobahn-3.1/rsv1-text", frames: []wire{{fin: true, rsv: 4, op: OpText, payload: "Hello"}}, wantCode: CloseProtocolError},
		{name: "5.2-rsv/autobahn-3.2/rsv2-after-valid", frames: []wire{text("Hello"), {fin: true, rsv: 2, op: OpText, payload: "Hello"}, ping("")},
			want: []msg{mText("Hello")}, wantCode: CloseProtocolError},
		{name: "5.2-rsv/autobahn-3.3/rsv1-rsv3", frames: []wire{text("Hello"), {fin: true, rsv: 5, op: OpText, payload: "Hello"}},
			want: []msg{mText("Hello")}, wantCode: CloseProtocolError},
		{name: "5.2-rsv/autobahn-3.4/rsv1-rsv2", frames: []wire{{fin: true, rsv: 6, op: OpText, payload: "Hello"}}, wantCode: CloseProtocolError},
		{name: "5.2-rsv/autobahn-3.5/binary-rsv-all", frames: []wire{{fin: true, rsv: 7, op: OpBinary, payload: "\x00\xff"}}, wantCode: CloseProtocolError},
		{name: "5.2-rsv/autobahn-3.6/ping-rsv1-rsv2", frames: []wire{{fin: true, rsv: 6, op: OpPing, payload: "Hello"}}, wantCode: CloseProtocolError},
		{name: "5.2-rsv/autobahn-3.7/close-rsv-all", frames: []wire{{fin: true, rsv: 7, op: OpClose, payload: closePayload(1000, "")}}, wantCode: CloseProtocolError},
		{name: "5.2-rsv/continuation-rsv3", frames: []wire{frag(OpText, "a", false), {fin: true, rsv: 1, op: OpContinuation, payload: "b"}}, wantCode: CloseProtocolError},
	}
}

func TestConformanceReservedBits(t *testing.T) { runConformance(t, conformanceReservedBits()) }

// conformanceOpcodes is the case table of TestConformanceOpcodes.
func conformanceOpcodes() []conformanceCase { // Autobahn 4.x
	var cases []conformanceCase
	for i, op := range []Opcode{3, 4, 5, 6, 7} {
		cases = append(cases, conformanceCase{
			name:     "5.2-opcode/autobahn-4.1." + strconv.Itoa(i+1) + "/reserved-data-" + strconv.Itoa(int(op)),
			frames:   []wire{text("Hello"), {fin: true, op: op, payload: "reserved"}, ping("")},
			want:     []msg{mText("Hello")},
			wantCode: CloseProtocolError,
		})
	}
	for i, op := range []Opcode{0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases, conformanceCase{
			name:     "5.2-opcode/autobahn-4.2." + strconv.Itoa(i+1) + "/reserved-control-" + strconv.Itoa(int(op)),
			frames:   []wire{text("Hello"), {fin: true, op: op, payload: ""}, ping("")},
			want:     []msg{mText("Hello")},
			wantCode: CloseProtocolError,
		})
	}
	cases = append(cases, conformanceCase{
		name:     "5.2-opcode/reserved-opcode-fails-on-header",
		raw:      []byte{0x83, 0x80 | 100, 1, 2, 3, 4}, // header and key, no payload
		wantCode: CloseProtocolError,
	})
	return cases
}

func TestConformanceOpcodes(t *testing.T) { runConformance(t, conformanceOpcodes()) }

// conformanceFragmentation is the case table of TestConformanceFragmentation.
func conformanceFragmentation() []conformanceCase { // Autobahn 5.x
	return []conformanceCase{
		{name: "5.5-control/autobahn-5.1/fragmented-ping",
			frames: []wire{frag(OpPing, "fragment1", false), frag(OpContinuation, "fragment2", true)}, wantCode: CloseProtocolError},
		{name: "5.5-control/autobahn-5.2/fragmented-pong",
			frames: []wire{frag(OpPong, "fragment1", false), frag(OpContinuation, "fragment2", true)}, wantCode: CloseProtocolError},
		{name: "5.5-control/fragmented-close",
			frames: []wire{{op: OpClose, payload: closePayload(1000, "")}}, wantCode: CloseProtocolError},
		{name: "5.4-fragmentation/autobahn-5.3/text-two-fragments",
			frames: []wire{frag(OpText, "fragment1", false), frag(OpContinuation, "fragment2", true)},
			want:   []msg{mText("fragment1fragment2")}},
		{name: "5.4-fragmentation/binary-two-fragments",
			frames: []wire{frag(OpBinary, "\x00\x01", false), frag(OpContinuation, "\xff", true)},
			want:   []msg{mBin("\x00\x01\xff")}},
		{name: "5.4-fragmentation/autobahn-5.6/ping-between-fragments",
			frames: []wire{frag(OpText, "fragment1", false), ping("ping payload"), frag(OpContinuation, "fragment2", true)},
			want:   []msg{mPing("ping payload"), mText("fragment1fragment2")}},
		{name: "5.4-fragmentation/close-between-fragments",
			frames: []wire{frag(OpText, "fragment1", false), closeFrame(1000, "bye")},
			want:   []msg{mClose(1000, "bye")}},
		{name: "5.4-fragmentation/autobahn-5.9/continuation-without-message",
			frames: []wire{frag(OpContinuation, "non-continuation payload", true), text("Hello, world!")}, wantCode: CloseProtocolError},
		{name: "5.4-fragmentation/autobahn-5.12/nonfinal-continuation-without-message",
			frames: []wire{frag(OpContinuation, "non-continuation payload", false), text("Hello, world!")}, wantCode: CloseProtocolError},
		{name: "5.4-fragmentation/autobahn-5.15/continuation-after-final",
			frames: []wire{frag(OpText, "fragment1", false), frag(OpContinuation, "fragment2", true),
				frag(OpContinuation, "fragment3", false), text("fragment4")},
			want: []msg{mText("fragment1fragment2")}, wantCode: CloseProtocolError},
		{name: "5.4-fragmentation/autobahn-5.16/continuations-only",
			frames:   []wire{frag(OpContinuation, "fragment1", false), frag(OpText, "fragment2", false), frag(OpContinuation, "fragment3", true)},
			wantCode: CloseProtocolError},
		{name: "5.4-fragmentation/autobahn-5.18/text-while-text-in-progress",
			frames: []wire{frag(OpText, "fragment1", false), frag(OpText, "fragment2", true)}, wantCode: CloseProtocolError},
		{name: "5.4-fragmentation/binary-while-text-in-progress",
			frames: []wire{frag(OpText, "fragment1", false), frag(OpBinary, "fragment2", false)}, wantCode: CloseProtocolError},
		{name: "5.4-fragmentation/autobahn-5.19/pings-among-five-fragments",
			frames: []wire{frag(OpText, "fragment1", false), frag(OpContinuation, "fragment2", false), ping("pongme 1!"),
				frag(OpContinuation, "fragment3", false), frag(OpContinuation, "fragment4", false), ping("pongme 2!"),
				frag(OpContinuation, "fragment5", true)},
			want: []msg{mPing("pongme 1!"), mPing("pongme 2!"), mText("fragment1fragment2fragment3fragment4fragment5")}},
		{name: "5.4-fragmentation/empty-fragments",
			frames: []wire{frag(OpText, "", false), frag(OpContinuation, "", false), frag(OpContinuation, "", true)},
			want:   []msg{mText("")}},
		{name: "5.4-fragmentation/two-messages-back-to-back",
			frames: []wire{frag(OpText, "a", false), frag(OpContinuation, "b", true), frag(OpBinary, "c", false), frag(OpContinuation, "d", true)},
			want:   []msg{mText("ab"), mBin("cd")}},
	}
}

func TestConformanceFragmentation(t *testing.T) { runConformance(t, conformanceFragmentation()) }

// utf8Vector is one UTF-8 test string (Autobahn 6.x, after Markus Kuhn's
// UTF-8 decoder capability and stress test).
type utf8Vector struct {
	name  string
	s     string
	valid bool
}

var utf8Vectors = []utf8Vector{
	{name: "6.2.1-mixed", s: "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", valid: true},
	{name: "6.5.1-kosme", s: "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", valid: true},
	{name: "6.3.1-kosme-then-surrogate", s: "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", valid: false},
	{name: "6.7.1-first-1-byte-U+0000", s: "\x00", valid: true},
	{name: "6.7.2-first-2-byte-U+0080", s: "\xc2\x80", valid: true},
	{name: "6.7.3-first-3-byte-U+0800", s: "\xe0\xa0\x80", valid: true},
	{name: "6.7.4-first-4-byte-U+10000", s: "\xf0\x90\x80\x80", valid: true},
	{name: "6.8.1-first-5-byte", s: "\xf8\x88\x80\x80\x80", valid: false},
	{name: "6.8.2-first-6-byte", s: "\xfc\x84\x80\x80\x80\x80", valid: false},
	{name: "6.9.1-last-1-byte-U+007F", s: "\x7f", valid: true},
	{name: "6.9.2-last-2-byte-U+07FF", s: "\xdf\xbf", valid: true},
	{name: "6.9.3-last-3-byte-U+FFFF", s: "\xef\xbf\xbf", valid: true},
	{name: "6.9.4-last-4-byte-U+10FFFF", s: "\xf4\x8f\xbf\xbf", valid: true},
	{name: "6.10.1-4-byte-U+1FFFFF", s: "\xf7\xbf\xbf\xbf", valid: false},
	{name: "6.10.2-5-byte", s: "\xfb\xbf\xbf\xbf\xbf", valid: false},
	{name: "6.10.3-6-byte", s: "\xfd\xbf\xbf\xbf\xbf\xbf", valid: false},
	{name: "6.11.1-U+D7FF", s: "\xed\x9f\xbf", valid: true},
	{name: "6.11.2-U+E000", s: "\xee\x80\x80", valid: true},
	{name: "6.11.3-U+FFFD", s: "\xef\xbf\xbd", valid: true},
	{name: "6.11.4-U+10FFFF", s: "\xf4\x8f\xbf\xbf", valid: true},
	{name: "6.11.5-U+110000", s: "\xf4\x90\x80\x80", valid: false},
	{name: "6.12.1-lone-continuation-80", s: "\x80", valid: false},
	{name: "6.12.2-lone-continuation-bf", s: "\xbf", valid: false},
	{name: "6.12.3-two-continuations", s: "\x80\xbf", valid: false},
	{name: "6.12.4-three-continuations", s: "\x80\xbf\x80", valid: false},
	{name: "6.12.8-all-continuations", s: allBytes(0x80, 0xbf), valid: false},
	{name: "6.13.1-lonely-2-byte-starts", s: spaced(0xc0, 0xdf), valid: false},
	{name: "6.13.2-lonely-3-byte-starts", s: spaced(0xe0, 0xef), valid: false},
	{name: "6.13.3-lonely-4-byte-starts", s: spaced(0xf0, 0xf7), valid: false},
	{name: "6.13.4-lonely-5-byte-starts", s: spaced(0xf8, 0xfb), valid: false},
	{name: "6.13.5-lonely-6-byte-starts", s: spaced(0xfc, 0xfd), valid: false},
	{name: "6.14.1-truncated-2-byte-U+0000", s: "\xc0", valid: false},
	{name: "6.14.2-truncated-3-byte-U+0000", s: "\xe0\x80", valid: false},
	{name: "6.14.3-truncated-4-byte-U+0000", s: "\xf0\x80\x80", valid: false},
	{name: "6.14.6-truncated-2-byte-U+07FF", s: "\xdf", valid: false},
	{name: "6.14.7-truncated-3-byte-U+FFFF", s: "\xef\xbf", valid: false},
	{name: "6.14.8-truncated-4-byte-U+10FFFF", s: "\xf4\x8f\xbf", valid: false},
	{name: "6.14.9-truncated-3-byte-after-text", s: "abc\xe2\x82", valid: false},
	{name: "6.15.1-truncated-sequences-concatenated", s: "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf", valid: false},
	{name: "6.16.1-impossible-fe", s: "\xfe", valid: false},
	{name: "6.16.2-impossible-ff", s: "\xff", valid: false},
	{name: "6.16.3-impossible-fefeffff", s: "\xfe\xfe\xff\xff", valid: false},
	{name: "6.17.1-overlong-slash-2-byte", s: "\xc0\xaf", valid: false},
	{name: "6.17.2-overlong-slash-3-byte", s: "\xe0\x80\xaf", valid: false},
	{name: "6.17.3-overlong-slash-4-byte", s: "\xf0\x80\x80\xaf", valid: false},
	{name: "6.17.4-overlong-slash-5-byte", s: "\xf8\x80\x80\x80\xaf", valid: false},
	{name: "6.18.1-max-overlong-2-byte", s: "\xc1\xbf", valid: false},
	{name: "6.18.2-max-overlong-3-byte", s: "\xe0\x9f\xbf", valid: false},
	{name: "6.18.3-max-overlong-4-byte", s: "\xf0\x8f\xbf\xbf", valid: false},
	{name: "6.19.1-overlong-nul-2-byte", s: "\xc0\x80", valid: false},
	{name: "6.19.2-overlong-nul-3-byte", s: "\xe0\x80\x80", valid: false},
	{name: "6.19.3-overlong-nul-4-byte", s: "\xf0\x80\x80\x80", valid: false},
	{name: "6.20.1-surrogate-U+D800", s: "\xed\xa0\x80", valid: false},
	{name: "6.20.2-surrogate-U+DB7F", s: "\xed\xad\xbf", valid: false},
	{name: "6.20.3-surrogate-U+DB80", s: "\xed\xae\x80", valid: false},
	{name: "6.20.4-surrogate-U+DBFF", s: "\xed\xaf\xbf", valid: false},
	{name: "6.20.5-surrogate-U+DC00", s: "\xed\xb0\x80", valid: false},
	{name: "6.20.6-surrogate-U+DF80", s: "\xed\xbe\x80", valid: false},
	{name: "6.20.7-surrogate-U+DFFF", s: "\xed\xbf\xbf", valid: false},
	{name: "6.21.1-surrogate-pair-D800-DC00", s: "\xed\xa0\x80\xed\xb0\x80", valid: false},
	{name: "6.21.8-surrogate-pair-DBFF-DFFF", s: "\xed\xaf\xbf\xed\xbf\xbf", valid: false},
	{name: "6.22.1-noncharacter-U+FFFE", s: "\xef\xbf\xbe", valid: true},
	{name: "6.22.2-noncharacter-U+FFFF", s: "\xef\xbf\xbf", valid: true},
	{name: "6.22.3-noncharacter-U+1FFFE", s: "\xf0\x9f\xbf\xbe", valid: true},
	{name: "6.22.34-noncharacter-U+10FFFF", s: "\xf4\x8f\xbf\xbf", valid: true},
	{name: "6.23.1-replacement-character", s: "\xef\xbf\xbd", valid: true},
	{name: "emoji-4-byte", s: "chat \xf0\x9f\x98\x80!", valid: true},
}

func allBytes(lo, hi int) string {
	var b []byte
	for c := lo; c <= hi; c++ {
		b = append(b, byte(c))
	}
	return string(b)
}

func spaced(lo, hi int) string {
	var b []byte
	for c := lo; c <= hi; c++ {
		b = append(b, byte(c), ' ')
	}
	return string(b)
}

// conformanceUTF8 is the case table of TestConformanceUTF8.
func conformanceUTF8() []conformanceCase { // Autobahn 6.x
	cases := []conformanceCase{
		{name: "5.6-utf8/autobahn-6.1.1/empty-text", frames: []wire{text("")}, want: []msg{mText("")}},
		{name: "5.6-utf8/autobahn-6.1.3/empty-fragments-around-text",
			frames: []wire{frag(OpText, "", false), frag(OpContinuation, "middle", false), frag(OpContinuation, "", true)},
			want:   []msg{mText("middle")}},
		{name: "5.6-utf8/autobahn-6.4.1/fail-fast-invalid-second-fragment",
			// The third fragment never arrives: the error must not wait for it.
			frames:   []wire{frag(OpText, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", false), frag(OpContinuation, "\xf4\x90\x80\x80", false)},
			wantCode: CloseInvalidPayload},
		{name: "5.6-utf8/autobahn-6.4.2/fail-fast-invalid-across-fragment-boundary",
			frames:   []wire{frag(OpText, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", false), frag(OpContinuation, "\x90", false)},
			wantCode: CloseInvalidPayload},
		{name: "5.6-utf8/fail-fast-invalid-first-fragment",
			frames:   []wire{frag(OpText, "ok\xc0\xaf", false)},
			wantCode: CloseInvalidPayload},
		{name: "5.6-utf8/surrogate-split-across-fragments",
			frames:   []wire{frag(OpText, "ab\xed", false), frag(OpContinuation, "\xa0\x80", true)},
			wantCode: CloseInvalidPayload},
		{name: "5.6-utf8/valid-4-byte-split-across-fragments",
			frames: []wire{frag(OpText, "ab\xf0\x9f", false), frag(OpContinuation, "\x98", false), frag(OpContinuation, "\x80cd", true)},
			want:   []msg{mText("ab\xf0\x9f\x98\x80cd")}},
		{name: "5.6-utf8/final-fragment-ends-mid-character",
			frames:   []wire{frag(OpText, "ab", false), frag(OpContinuation, "\xe2\x82", true)},
			wantCode: CloseInvalidPayload},
		{name: "5.6-utf8/ping-between-split-character",
			frames: []wire{frag(OpText, "\xe2", false), ping("\xff"), frag(OpContinuation, "\x82\xac", true)},
			want:   []msg{mPing("\xff"), mText("\xe2\x82\xac")}},
		{name: "5.6-utf8/binary-is-not-checked",
			frames: []wire{binary_("\xff\xfe\xed\xa0\x80")},
			want:   []msg{mBin("\xff\xfe\xed\xa0\x80")}},
	}
	for _, v := range utf8Vectors {
		whole := conformanceCase{name: "5.6-utf8/autobahn-" + v.name + "/whole", frames: []wire{text(v.s)}}
		perByte := conformanceCase{name: "5.6-utf8/autobahn-" + v.name + "/fragment-per-byte", frames: fragments(OpText, v.s, 1)}
		if v.valid {
			whole.want = []msg{mText(v.s)}
			perByte.want = []msg{mText(v.s)}
		} else {
			whole.wantCode = CloseInvalidPayload
			perByte.wantCode = CloseInvalidPayload
		}
		cases = append(cases, whole, perByte)
	}
	return cases
}

func TestConformanceUTF8(t *testing.T) { runConformance(t, conformanceUTF8()) }

// conformanceClose is the case table of TestConformanceClose.
func conformanceClose() []conformanceCase { // Autobahn 7.x
	invalidUTF8 := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"
	cases := []conformanceCase{
		{name: "5.5.1-close/autobahn-7.1.1/text-then-close",
			frames: []wire{text("Hello World!"), closeFrame(1000, "")},
			want:   []msg{mText("Hello World!"), mClose(1000, "")}},
		{name: "5.5.1-close/autobahn-7.3.1/empty-payload-is-1005",
			frames: []wire{{fin: true, op: OpClose}}, want: []msg{mClose(CloseNoStatus, "")}},
		{name: "5.5.1-close/autobahn-7.3.2/one-byte-payload",
			frames: []wire{{fin: true, op: OpClose, payload: "0"}}, wantCode: CloseProtocolError},
		{name: "5.5.1-close/autobahn-7.3.3/code-only",
			frames: []wire{closeFrame(1000, "")}, want: []msg{mClose(1000, "")}},
		{name: "5.5.1-close/autobahn-7.3.4/code-and-reason",
			frames: []wire{closeFrame(1000, "Hello World!")}, want: []msg{mClose(1000, "Hello World!")}},
		{name: "5.5.1-close/autobahn-7.3.5/reason-123-bytes",
			frames: []wire{closeFrame(1000, repeat("*", 123))}, want: []msg{mClose(1000, repeat("*", 123))}},
		{name: "5.5-control/autobahn-7.3.6/reason-124-bytes",
			frames: []wire{closeFrame(1000, repeat("*", 124))}, wantCode: CloseProtocolError},
		{name: "5.5.1-close/autobahn-7.5.1/reason-invalid-utf8",
			frames: []wire{closeFrame(1000, invalidUTF8)}, wantCode: CloseInvalidPayload},
		{name: "5.5.1-close/reason-truncated-utf8",
			frames: []wire{closeFrame(1000, "bye \xe2\x82")}, wantCode: CloseInvalidPayload},
	}
	for i, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, conformanceCase{
			name:   "7.4-close-codes/autobahn-7.7." + strconv.Itoa(i+1) + "/valid-" + strconv.Itoa(int(code)),
			frames: []wire{closeFrame(code, "")},
			want:   []msg{mClose(CloseCode(code), "")},
		})
	}
	for i, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, conformanceCase{
			name:     "7.4-close-codes/autobahn-7.9." + strconv.Itoa(i+1) + "/invalid-" + strconv.Itoa(int(code)),
			frames:   []wire{closeFrame(code, "")},
			wantCode: CloseProtocolError,
		})
	}
	return cases
}

func TestConformanceClose(t *testing.T) { runConformance(t, conformanceClose()) }

// conformanceLimits is the case table of TestConformanceLimits.
func conformanceLimits() []conformanceCase { // Autobahn 9.x, 10.x and our limits
	big := func(n int) string { return repeat("BAsd7&jh23", n/10+1)[:n] }
	var cases []conformanceCase
	for i, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
		cases = append(cases,
			conformanceCase{
				name:       "10.4-limits/autobahn-9.1." + strconv.Itoa(i+1) + "/text-" + strconv.Itoa(n),
				frames:     []wire{text(big(n))},
				maxMessage: 16 << 20,
				want:       []msg{mText(big(n))},
			},
			conformanceCase{
				name:       "10.4-limits/autobahn-9.2." + strconv.Itoa(i+1) + "/binary-" + strconv.Itoa(n),
				frames:     []wire{binary_(big(n))},
				maxMessage: 16 << 20,
				want:       []msg{mBin(big(n))},
			})
	}
	for i, size := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		cases = append(cases,
			conformanceCase{
				name:       "10.4-limits/autobahn-9.3." + strconv.Itoa(i+1) + "/fragmented-text-4MiB-by-" + strconv.Itoa(size),
				frames:     fragments(OpText, big(4<<20), size),
				maxMessage: 4 << 20,
				want:       []msg{mText(big(4 << 20))},
			},
			conformanceCase{
				name:       "10.4-limits/autobahn-9.4." + strconv.Itoa(i+1) + "/fragmented-binary-4MiB-by-" + strconv.Itoa(size),
				frames:     fragments(OpBinary, big(4<<20), size),
				maxMessage: 4 << 20,
				want:       []msg{mBin(big(4 << 20))},
			})
	}
	cases = append(cases,
		conformanceCase{
			name:   "10.4-limits/autobahn-10.1.1/64KiB-text-in-1300-byte-fragments",
			frames: fragments(OpText, big(65536), 1300),
			want:   []msg{mText(big(65536))},
		},
		conformanceCase{
			name:   "10.4-limits/default-max-message-exact",
			frames: []wire{binary_(big(DefaultMaxMessage))},
			want:   []msg{mBin(big(DefaultMaxMessage))},
		},
		conformanceCase{
			name:     "10.4-limits/default-max-message-plus-one",
			frames:   []wire{binary_(big(DefaultMaxMessage + 1))},
			wantCode: CloseMessageTooBig,
		},
		conformanceCase{
			name:       "10.4-limits/single-frame-at-limit",
			frames:     []wire{text(big(1000))},
			maxMessage: 1000,
			want:       []msg{mText(big(1000))},
		},
		conformanceCase{
			name:       "10.4-limits/single-frame-over-limit-fails-on-header",
			raw:        []byte{0x81, 0x80 | 126, 0x03, 0xE9, 1, 2, 3, 4}, // 1001 bytes declared, none sent
			maxMessage: 1000,
			wantCode:   CloseMessageTooBig,
		},
		conformanceCase{
			name:       "10.4-limits/fragments-at-limit",
			frames:     []wire{frag(OpText, big(600), false), frag(OpContinuation, big(400), true)},
			maxMessage: 1000,
			want:       []msg{mText(big(600) + big(400))},
		},
		conformanceCase{
			name: "10.4-limits/fragments-over-limit-fail-at-crossing-fragment",
			// The final fragment never arrives: the running size is enough.
			frames:     []wire{frag(OpBinary, big(600), false), frag(OpContinuation, big(300), false), frag(OpContinuation, big(101), false)},
			maxMessage: 1000,
			wantCode:   CloseMessageTooBig,
		},
		conformanceCase{
			name:       "10.4-limits/control-frames-do-not-count",
			frames:     []wire{frag(OpText, big(10), false), ping(big(125)), closeFrame(1000, big(100))},
			maxMessage: 10,
			want:       []msg{mPing(big(125)), mClose(1000, big(100))},
		},
		conformanceCase{
			name:       "10.4-limits/limit-resets-per-message",
			frames:     []wire{frag(OpText, big(8), false), frag(OpContinuation, big(2), true), frag(OpText, big(8), false), frag(OpContinuation, big(2), true)},
			maxMessage: 10,
			want:       []msg{mText(big(8) + big(2)), mText(big(8) + big(2))},
		},
	)
	return cases
}

func TestConformanceLimits(t *testing.T) { runConformance(t, conformanceLimits()) }

// With the largest limit, the largest length it allows waits for its
// payload instead of overflowing the frame end, and the largest length a
// header can declare is refused as too big.
func TestReaderHugeLimitNoOverflow(t *testing.T) {
	cases := []struct {
		name     string
		length   [8]byte // the 64-bit extended payload length
		wantCode CloseCode
	}{
		{name: "at-limit-waits", length: [8]byte{0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF}},
		{name: "largest-declared-too-big", length: [8]byte{0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, wantCode: CloseMessageTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Reader{MaxMessage: math.MaxInt32}
			raw := append(append([]byte{0x82, 0xFF}, tc.length[:]...), 1, 2, 3, 4, 5)
			_, n, ok, err := r.Next(raw)
			if tc.wantCode != 0 {
				if closeCode(err) != tc.wantCode || n != 0 || ok {
					t.Fatalf("n=%d ok=%v err=%v, want close code %d", n, ok, err, tc.wantCode)
				}
				return
			}
			if !errors.Is(err, ErrShortFrame) || n != 0 || ok {
				t.Fatalf("n=%d ok=%v err=%v, want ErrShortFrame", n, ok, err)
			}
		})
	}
}

// Reset drops a message in progress and releases a large reassembly
// buffer; the Reader then accepts a new stream.
func TestReaderReset(t *testing.T) {
	r := Reader{MaxMessage: 1 << 20}
	big := repeat("x", 2*reassemblyKeep)
	if _, err := readAll(t, &r, encode(frag(OpText, big, false), frag(OpContinuation, "\xe2", false)), 0); err != nil {
		t.Fatal(err)
	}
	if !r.inMessage || r.frag == nil || cap(r.frag.buf) <= reassemblyKeep {
		t.Fatalf("setup: inMessage=%v frag=%+v", r.inMessage, r.frag)
	}
	r.Reset()
	if r.inMessage || r.frag.buf != nil || r.frag.text != utf8Accept || r.frag.size != 0 {
		t.Fatalf("after Reset: %+v %+v", r, *r.frag)
	}
	// A continuation is now a violation and a new text message is fine.
	if _, err := readAll(t, &r, encode(frag(OpContinuation, "x", true)), 0); closeCode(err) != CloseProtocolError {
		t.Fatalf("continuation after Reset: %v", err)
	}
	r.Reset()
	got, err := readAll(t, &r, encode(text("fresh")), 0)
	if err != nil || len(got) != 1 || got[0] != mText("fresh") {
		t.Fatalf("after Reset: %v %v", got, err)
	}
}

// The reassembly buffer is dropped after a message larger than
// reassemblyKeep and reused after a small one; the returned payload stays
// intact either way until the next call.
func TestReaderBufferRelease(t *testing.T) {
	r := Reader{MaxMessage: 1 << 20}
	small := encode(frag(OpBinary, "ab", false), frag(OpContinuation, "cd", true))
	m := nextMessage(t, &r, small)
	if string(m.Payload) != "abcd" || cap(r.frag.buf) == 0 {
		t.Fatalf("small: %q, kept cap %d", m.Payload, cap(r.frag.buf))
	}
	large := repeat("L", reassemblyKeep)
	m = nextMessage(t, &r, encode(frag(OpBinary, large, false), frag(OpContinuation, large, true)))
	if string(m.Payload) != large+large || r.frag.buf != nil {
		t.Fatalf("large: %d bytes, kept buffer cap %d", len(m.Payload), cap(r.frag.buf))
	}
}

// nextMessage feeds stream to r and returns the single message it yields.
func nextMessage(t *testing.T, r *Reader, stream []byte) Message {
	t.Helper()
	for {
		m, n, ok, err := r.Next(stream)
		if err != nil {
			t.Fatal(err)
		}
		stream = stream[n:]
		if ok {
			if len(stream) != 0 {
				t.Fatalf("%d bytes left", len(stream))
			}
			return m
		}
	}
}

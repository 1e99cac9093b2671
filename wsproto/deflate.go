package wsproto

import (
	"bytes"
	"compress/flate"
	"io"
	"math"
	"sync"
)

// DeflateParams is the outcome of permessage-deflate negotiation (RFC 7692).
//
// The server always answers with server_no_context_takeover and
// client_no_context_takeover, so every message is compressed and
// decompressed on its own and an idle connection holds no compressor state;
// Inflate and Deflate rely on that.
type DeflateParams struct {
	// Enabled is true when the extension was agreed; the server must then
	// accept RSV1 on the first frame of a message (Reader.Deflate).
	Enabled bool
	// ServerNoContextTakeover and ClientNoContextTakeover are always true
	// when Enabled (see above).
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	// ServerMaxWindowBits is the server_max_window_bits the client's offer
	// named (8..15; the server must then confirm it), else 0. The
	// compress/flate encoder always uses a 32 KiB window, but with no
	// context takeover a compressed message never refers back further
	// than its own length, so the server honours a smaller window by
	// compressing only messages of at most MaxCompressed bytes and
	// sending longer ones uncompressed (RFC 7692 §6 lets it).
	ServerMaxWindowBits uint8
}

// MaxCompressed is the longest message the server may send compressed under
// p: 1<<ServerMaxWindowBits when the client limited the server's window
// below the default 15 bits, else no limit (math.MaxInt). It is 0 when the
// extension is not enabled.
func (p *DeflateParams) MaxCompressed() int {
	switch {
	case !p.Enabled:
		return 0
	case p.ServerMaxWindowBits >= 8 && p.ServerMaxWindowBits < 15:
		return 1 << p.ServerMaxWindowBits
	}
	return math.MaxInt
}

// AppendResponse appends the Sec-WebSocket-Extensions response value for p.
func (p *DeflateParams) AppendResponse(dst []byte) []byte {
	dst = append(dst, "permessage-deflate"...)
	if p.ServerNoContextTakeover {
		dst = append(dst, "; server_no_context_takeover"...)
	}
	if p.ClientNoContextTakeover {
		dst = append(dst, "; client_no_context_takeover"...)
	}
	if p.ServerMaxWindowBits != 0 {
		dst = append(dst, "; server_max_window_bits="...)
		if p.ServerMaxWindowBits >= 10 {
			dst = append(dst, '0'+p.ServerMaxWindowBits/10)
		}
		dst = append(dst, '0'+p.ServerMaxWindowBits%10)
	}
	return dst
}

// negotiateDeflate walks one Sec-WebSocket-Extensions header value and
// accepts the first acceptable permessage-deflate offer in it (RFC 7692
// §5, §7.1). An offer with an unknown or repeated parameter, or a bad
// value, is declined and the next one is tried.
func negotiateDeflate(v []byte) DeflateParams {
	for len(v) > 0 {
		var ext []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			ext, v = v[:i], v[i+1:]
		} else {
			ext, v = v, nil
		}
		if p, ok := deflateOffer(ext); ok {
			return p
		}
	}
	return DeflateParams{}
}

// deflateOffer checks one extension offer: "permessage-deflate" followed by
// ";"-separated parameters.
func deflateOffer(ext []byte) (DeflateParams, bool) {
	name, params, _ := bytes.Cut(ext, []byte{';'})
	if !equalFold(trimOWS(name), "permessage-deflate") {
		return DeflateParams{}, false
	}
	p := DeflateParams{
		Enabled:                 true,
		ServerNoContextTakeover: true,
		ClientNoContextTakeover: true,
	}
	var seen uint8
	for len(params) > 0 {
		var param []byte
		param, params, _ = bytes.Cut(params, []byte{';'})
		key, val, hasVal := bytes.Cut(param, []byte{'='})
		key = trimOWS(key)
		val = trimOWS(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1] // quoted-string form (RFC 7692 §7.1)
		}
		var bit uint8
		switch {
		case equalFold(key, "server_no_context_takeover"):
			bit = 1
			if hasVal {
				return DeflateParams{}, false
			}
		case equalFold(key, "client_no_context_takeover"):
			bit = 2
			if hasVal {
				return DeflateParams{}, false
			}
		case equalFold(key, "server_max_window_bits"):
			bit = 4
			bits, ok := windowBits(val)
			if !hasVal || !ok {
				return DeflateParams{}, false
			}
			p.ServerMaxWindowBits = bits
		case equalFold(key, "client_max_window_bits"):
			// The client can limit its own window; our inflater handles
			// any window, so the server does not answer this parameter
			// and the client keeps its default of 15 (§7.1.2.2).
			bit = 8
			if _, ok := windowBits(val); hasVal && !ok {
				return DeflateParams{}, false
			}
		default:
			return DeflateParams{}, false
		}
		if seen&bit != 0 {
			return DeflateParams{}, false
		}
		seen |= bit
	}
	return p, true
}

// windowBits parses a window size of 8..15 (RFC 7692 §7.1.2).
func windowBits(v []byte) (uint8, bool) {
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return v[0] - '0', true
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + v[1] - '0', true
	}
	return 0, false
}

// deflateTail ends every compressed message on the wire after the sender
// strips it (RFC 7692 §7.2.1); the inflater puts it back (§7.2.2). The
// trailing final empty stored block makes the decompressor report io.EOF
// at the end of the message instead of waiting for more input.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

var (
	errInflateCorrupt = &CloseError{CloseInvalidPayload, "invalid compressed data"}
)

// tailReader reads src and then deflateTail, as one io.ByteReader so that
// flate does not wrap it in a bufio.Reader.
type tailReader struct {
	src  []byte
	tail []byte
}

func (r *tailReader) Read(p []byte) (int, error) {
	if len(r.src) > 0 {
		n := copy(p, r.src)
		r.src = r.src[n:]
		return n, nil
	}
	if len(r.tail) > 0 {
		n := copy(p, r.tail)
		r.tail = r.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

func (r *tailReader) ReadByte() (byte, error) {
	if len(r.src) > 0 {
		c := r.src[0]
		r.src = r.src[1:]
		return c, nil
	}
	if len(r.tail) > 0 {
		c := r.tail[0]
		r.tail = r.tail[1:]
		return c, nil
	}
	return 0, io.EOF
}

// inflater is a pooled decompressor with its input reader.
type inflater struct {
	in tailReader
	fr io.ReadCloser // implements flate.Resetter
}

var inflaters = sync.Pool{New: func() any {
	f := new(inflater)
	f.fr = flate.NewReader(&f.in)
	return f
}}

// Inflate appends the decompressed form of a permessage-deflate payload
// (the wire bytes, without the 0x00 0x00 0xff 0xff that the sender
// stripped) to dst. It returns *CloseError 1009 as soon as the output would
// exceed limit bytes, so a small payload cannot expand into a large
// allocation, and *CloseError 1007 for corrupt data. On error dst is
// returned with its original length.
func Inflate(dst, src []byte, limit int) ([]byte, error) {
	f := inflaters.Get().(*inflater)
	defer inflaters.Put(f)
	f.in = tailReader{src: src, tail: deflateTail}
	if err := f.fr.(flate.Resetter).Reset(&f.in, nil); err != nil {
		return dst, errInflateCorrupt
	}
	defer func() { f.in = tailReader{} }() // do not keep the caller's bytes alive in the pool

	start := len(dst)
	limit = max(limit, 0)
	for {
		if len(dst) == cap(dst) {
			// Grow as output actually appears, never by a guess from
			// the input, and never past limit+1 (one byte over is
			// enough to know the limit was crossed).
			want := min(max(2*(len(dst)-start), 4*len(src), 512), limit+1)
			if len(dst)-start >= want {
				want = len(dst) - start + 1
			}
			grown := make([]byte, len(dst), start+want)
			copy(grown, dst)
			dst = grown
		}
		room := min(cap(dst)-len(dst), limit+1-(len(dst)-start))
		n, err := f.fr.Read(dst[len(dst) : len(dst)+room])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], errTooBig
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], errInflateCorrupt
		}
	}
}

// appendWriter is an io.Writer that appends to buf.
type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// deflater is a pooled compressor with its output buffer.
type deflater struct {
	out appendWriter
	fw  *flate.Writer
}

// DeflateLevel is the compress/flate level Deflate uses: chat messages are
// small and the server's CPU is better spent on fan-out.
const DeflateLevel = flate.BestSpeed

var deflaters = sync.Pool{New: func() any {
	d := new(deflater)
	d.fw, _ = flate.NewWriter(&d.out, DeflateLevel) // the level is valid
	return d
}}

// Deflate appends src compressed for a permessage-deflate message to dst:
// a sync-flushed DEFLATE stream with the trailing 0x00 0x00 0xff 0xff
// removed (RFC 7692 §7.2.1). Each call starts from an empty window (no
// context takeover). Send the result as the payload of a frame with RSV1
// set on the first frame of the message.
func Deflate(dst, src []byte) []byte {
	d := deflaters.Get().(*deflater)
	d.out.buf = dst
	d.fw.Reset(&d.out)
	d.fw.Write(src) // appendWriter never fails
	d.fw.Flush()
	out := d.out.buf
	d.out.buf = nil
	deflaters.Put(d)
	// Flush ends with an empty stored block, 0x00 0x00 0xff 0xff.
	if n := len(out); n-len(dst) >= 4 && out[n-4] == 0 && out[n-3] == 0 && out[n-2] == 0xff && out[n-1] == 0xff {
		out = out[:n-4]
	}
	return out
}

package wsproto

import (
	"strconv"
	"testing"
	"unicode/utf8"
)

var benchSizes = []int{16, 125, 1024, 65536}

func BenchmarkParse(b *testing.B) {
	for _, n := range benchSizes {
		frame := encode(binary_(repeat("x", n)))
		b.Run("size="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Parse(frame, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnmask(b *testing.B) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for _, n := range benchSizes {
		f := Frame{Key: key, Payload: make([]byte, n)}
		b.Run("size="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				f.Masked = true
				f.Unmask()
			}
		})
	}
}

// BenchmarkValidUTF8 measures the incremental validator Reader runs on
// fragments, whole and with the text cut into 4 fragments at arbitrary
// (mid-character) points, against utf8.Valid on the whole text.
func BenchmarkValidUTF8(b *testing.B) {
	inputs := []struct {
		name string
		s    string
	}{
		{name: "ascii/size=125", s: repeat("a", 125)},
		{name: "ascii/size=1024", s: repeat("a", 1024)},
		{name: "ascii/size=65536", s: repeat("a", 65536)},
		{name: "mixed/size=1024", s: truncUTF8(repeat("chat 中文 ünïcode 😀 ", 64), 1024)},
		{name: "cjk/size=1024", s: truncUTF8(repeat("中文消息", 128), 1024)},
	}
	for _, in := range inputs {
		p := []byte(in.s)
		q := len(p) / 4
		b.Run(in.name+"/stream-whole", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				var s utf8State
				if !s.write(p) || s != utf8Accept {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(in.name+"/stream-4-fragments", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				var s utf8State
				s.write(p[:q+1])
				s.write(p[q+1 : 2*q+2])
				s.write(p[2*q+2 : 3*q])
				if !s.write(p[3*q:]) || s != utf8Accept {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(in.name+"/utf8.Valid", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				utf8.Valid(p)
			}
		})
	}
}

func BenchmarkReaderNext(b *testing.B) {
	for _, n := range benchSizes {
		frame := encode(text(repeat("m", n)))
		buf := make([]byte, len(frame))
		b.Run("text/size="+strconv.Itoa(n), func(b *testing.B) {
			r := Reader{MaxMessage: 1 << 20}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				copy(buf, frame) // Next unmasks in place
				if _, _, ok, err := r.Next(buf); !ok || err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	frags := encode(fragments(OpText, repeat("f", 1024), 256)...)
	buf := make([]byte, len(frags))
	b.Run("fragmented-4x256", func(b *testing.B) {
		var r Reader
		b.ReportAllocs()
		b.SetBytes(1024)
		for b.Loop() {
			copy(buf, frags)
			p := buf
			for len(p) > 0 {
				_, n, _, err := r.Next(p)
				if err != nil {
					b.Fatal(err)
				}
				p = p[n:]
			}
		}
	})
}

func BenchmarkAppendFrame(b *testing.B) {
	for _, n := range benchSizes {
		payload := make([]byte, n)
		dst := make([]byte, 0, n+MaxHeaderLen)
		b.Run("size="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				dst = AppendFrame(dst[:0], OpText, payload)
			}
		})
	}
}

func BenchmarkParseHandshake(b *testing.B) {
	head := request(upgradeLines(
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
		"Accept-Encoding: gzip, deflate, br",
		"Accept-Language: en-US,en;q=0.9",
		"Cache-Control: no-cache",
		"Pragma: no-cache",
	)...)
	cfg := &HandshakeConfig{Origins: []string{"http://example.com"}, Compression: true}
	b.Run("browser", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(head)))
		for b.Loop() {
			if _, _, err := ParseHandshake(head, cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
	var req Request
	req, _, _ = ParseHandshake(head, cfg)
	dst := make([]byte, 0, 512)
	b.Run("response", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dst = AppendHandshakeResponse(dst[:0], &req)
		}
	})
}

func BenchmarkDeflate(b *testing.B) {
	msg := []byte(repeat(`{"event":"message","data":{"session_id":42,"seq":118,"from":"u1","type":"text","content":{"text":"hi"}}}`, 10))
	c := Deflate(nil, msg)
	dst := make([]byte, 0, 4096)
	b.Run("deflate/size="+strconv.Itoa(len(msg)), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			dst = Deflate(dst[:0], msg)
		}
	})
	b.Run("inflate/size="+strconv.Itoa(len(msg)), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			dst, _ = Inflate(dst[:0], c, 1<<20)
		}
	})
}

// truncUTF8 cuts s to at most n bytes on a character boundary.
func truncUTF8(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:min(n, len(s))]
}

// typicalEvents are chat frames as the core encodes them: a short text
// message event, one with a sentence of Chinese text, a message with an
// image's metadata, and a page of 20 history messages.
func typicalEvents() []struct {
	name string
	b    []byte
} {
	msg := func(seq int, text string) string {
		return `{"session_id":1042,"seq":` + strconv.Itoa(seq) + `,"msg_id":"1042-` + strconv.Itoa(seq) +
			`","from":"u-8d1f2c","type":"text","content":{"text":"` + text + `"},"cid":"c-1766000000123-` + strconv.Itoa(seq) +
			`","created_at":17660000` + strconv.Itoa(10000+seq) + `}`
	}
	page := `{"reply_to":"17","ok":true,"data":{"messages":[`
	for i := range 20 {
		if i > 0 {
			page += ","
		}
		page += msg(100+i, "message number "+strconv.Itoa(i)+" in this conversation, about the order")
	}
	page += `],"has_more":true}}`
	return []struct {
		name string
		b    []byte
	}{
		{name: "short-text", b: []byte(`{"event":"message","data":` + msg(118, "ok, see you at 3") + `}`)},
		{name: "sentence", b: []byte(`{"event":"message","data":` + msg(119, "您好，请问这件商品还有货吗？我想今天下单，明天能发货吗？谢谢！Could you also tell me the delivery time to Shanghai?") + `}`)},
		{name: "image", b: []byte(`{"event":"message","data":{"session_id":1042,"seq":120,"msg_id":"1042-120","from":"u-8d1f2c","type":"image","content":{"url":"/files/1/5f2b8c1e9a7d4e3f8b6a2c1d0e9f8a7b.jpg","width":1280,"height":960,"size":284312,"thumb":"/files/1/5f2b8c1e9a7d4e3f8b6a2c1d0e9f8a7b_thumb.jpg","name":"IMG_20251122_104512.jpg"},"created_at":1766000012345}}`)},
		{name: "history-20", b: []byte(page)},
	}
}

// BenchmarkDeflateEvents measures what permessage-deflate costs and saves
// per typical frame: ns/op is the CPU to compress one message (once per
// broadcast), wire-B the compressed payload, ratio wire/plain.
func BenchmarkDeflateEvents(b *testing.B) {
	dst := make([]byte, 0, 16<<10)
	for _, ev := range typicalEvents() {
		z := Deflate(nil, ev.b)
		b.Run("deflate/"+ev.name+"/size="+strconv.Itoa(len(ev.b)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(ev.b)))
			for b.Loop() {
				dst = Deflate(dst[:0], ev.b)
			}
			b.ReportMetric(float64(len(z)), "wire-B")
			b.ReportMetric(float64(len(z))/float64(len(ev.b)), "ratio")
		})
		b.Run("inflate/"+ev.name+"/size="+strconv.Itoa(len(ev.b)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(ev.b)))
			for b.Loop() {
				dst, _ = Inflate(dst[:0], z, 1<<20)
			}
		})
	}
}

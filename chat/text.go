package chat

import (
	"bytes"
	"unicode/utf8"
)

// Raw JSON that the core stores verbatim (message content, a user's extra)
// must be text every client can decode. WebSocket text frames must be
// UTF-8 (RFC 6455 §8.1): a browser or Node's ws that receives an invalid
// byte drops the connection (1006), and would drop it again on every
// history page that holds the message. The WebSocket side refuses such
// frames (1007), but the HTTP doors read bytes as they come, and
// json.Valid does not look at the bytes inside strings, so the check is
// here, where every door's content passes.
//
// A \ud800-style escape is ASCII on the wire, so it passes utf8.Valid, but
// it decodes to a lone UTF-16 surrogate: JavaScript keeps a broken string,
// strict decoders (Rust's serde_json, Python's with surrogatepass off when
// encoding) refuse the whole frame. So a surrogate escape must be one half
// of a pair.

// jsonTextProblem says why b, a JSON value, is not clean text: invalid
// UTF-8, or a lone surrogate escape. "" when it is clean. It assumes b is
// valid JSON (backslashes occur only inside strings, each starting an
// escape); on other input it still never reads out of bounds.
func jsonTextProblem(b []byte) string {
	if !utf8.Valid(b) {
		return "is not valid UTF-8"
	}
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 || i+j+1 >= len(b) {
			break
		}
		i += j
		if b[i+1] != 'u' {
			i += 2 // \" \\ \/ \b \f \n \r \t
			continue
		}
		u, ok := hex4(b, i+2)
		if !ok {
			return "holds a bad \\u escape"
		}
		if u >= 0xD800 && u <= 0xDBFF { // a high half: the low half must follow
			lo, ok := uint16(0), i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u'
			if ok {
				lo, ok = hex4(b, i+8)
			}
			if ok && lo >= 0xDC00 && lo <= 0xDFFF {
				i += 12
				continue
			}
		}
		if u >= 0xD800 && u <= 0xDFFF {
			return "holds a lone UTF-16 surrogate escape (\\u" + string(b[i+2:i+6]) + "); escape a character outside the BMP as a surrogate pair"
		}
		i += 6
	}
	return ""
}

// hex4 reads the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (uint16, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var v uint16
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

// cleanStored repairs raw JSON read back from the store that holds invalid
// UTF-8 (stored before the check above existed): each bad byte becomes
// U+FFFD. Valid JSON has such bytes only inside strings, so the result is
// still valid JSON. Clean input is returned as is, without copying.
func cleanStored(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte("\uFFFD"))
}

// cleanMessages applies cleanStored to the content of messages read back
// for a history or sync page.
func cleanMessages(ms []Message) {
	for i := range ms {
		ms[i].Content = cleanStored(ms[i].Content)
	}
}

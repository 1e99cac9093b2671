package wsproto

import "unicode/utf8"

// utf8State is the state of an incremental UTF-8 validator: which bytes may
// come next. Its zero value is utf8Accept (between characters). A text
// message is valid when every fragment was accepted by write and the state
// is utf8Accept after the last one.
//
// The state machine accepts exactly the well-formed sequences of Unicode
// 15 Table 3-7: no overlong forms (C0, C1, E0 80-9F, F0 80-8F), no
// surrogates (ED A0-BF), nothing above U+10FFFF (F4 90-BF, F5-FF).
type utf8State uint8

const (
	utf8Accept utf8State = iota // between characters
	utf8Reject                  // an invalid byte was seen; sticky
	utf8Tail1                   // one continuation byte 80-BF to go
	utf8Tail2                   // two continuation bytes to go
	utf8Tail3                   // three continuation bytes to go
	utf8E0                      // after E0: A0-BF, then one more
	utf8ED                      // after ED: 80-9F (no surrogates), then one more
	utf8F0                      // after F0: 90-BF, then two more
	utf8F4                      // after F4: 80-8F (≤ U+10FFFF), then two more
	utf8States
)

// Byte classes of the validator.
const (
	ucASCII  = iota // 00-7F
	ucCont80        // 80-8F
	ucCont90        // 90-9F
	ucContA0        // A0-BF
	ucBad           // C0, C1, F5-FF: never valid
	ucLead2         // C2-DF
	ucE0            // E0
	ucLead3         // E1-EC, EE-EF
	ucED            // ED
	ucF0            // F0
	ucLead4         // F1-F3
	ucF4            // F4
	utf8Classes
)

var utf8Class = func() (t [256]uint8) {
	for i := range t {
		c := byte(i)
		switch {
		case c < 0x80:
			t[i] = ucASCII
		case c < 0x90:
			t[i] = ucCont80
		case c < 0xA0:
			t[i] = ucCont90
		case c < 0xC0:
			t[i] = ucContA0
		case c < 0xC2:
			t[i] = ucBad
		case c < 0xE0:
			t[i] = ucLead2
		case c == 0xE0:
			t[i] = ucE0
		case c == 0xED:
			t[i] = ucED
		case c < 0xF0:
			t[i] = ucLead3
		case c == 0xF0:
			t[i] = ucF0
		case c < 0xF4:
			t[i] = ucLead4
		case c == 0xF4:
			t[i] = ucF4
		default:
			t[i] = ucBad
		}
	}
	return t
}()

// utf8Next[state][class] is the next state; anything not listed rejects.
var utf8Next = func() (t [utf8States][utf8Classes]utf8State) {
	for s := range t {
		for c := range t[s] {
			t[s][c] = utf8Reject
		}
	}
	a := &t[utf8Accept]
	a[ucASCII] = utf8Accept
	a[ucLead2] = utf8Tail1
	a[ucE0] = utf8E0
	a[ucLead3] = utf8Tail2
	a[ucED] = utf8ED
	a[ucF0] = utf8F0
	a[ucLead4] = utf8Tail3
	a[ucF4] = utf8F4
	for _, c := range []int{ucCont80, ucCont90, ucContA0} {
		t[utf8Tail1][c] = utf8Accept
		t[utf8Tail2][c] = utf8Tail1
		t[utf8Tail3][c] = utf8Tail2
	}
	t[utf8E0][ucContA0] = utf8Tail1
	t[utf8ED][ucCont80] = utf8Tail1
	t[utf8ED][ucCont90] = utf8Tail1
	t[utf8F0][ucCont90] = utf8Tail2
	t[utf8F0][ucContA0] = utf8Tail2
	t[utf8F4][ucCont80] = utf8Tail2
	return t
}()

// write feeds p to the validator. It returns false if p contains a byte
// that cannot continue a well-formed sequence (the state then stays
// utf8Reject). A character cut by the end of p is carried over to the next
// call, so fragments can be checked one by one as they arrive.
//
// Only the at most 3 bytes that finish a character left open by the
// previous call and the at most 3 bytes of a character cut at the end of p
// go through the state machine; everything between is checked by
// utf8.Valid, which skips ASCII 8 bytes at a time and decodes the rest with
// the standard library's tables (measured at 3-4x this package's own
// byte-at-a-time loop on ASCII).
func (s *utf8State) write(p []byte) bool {
	st := *s
	i := 0
	// Finish the character the previous fragment left open.
	for st != utf8Accept && i < len(p) {
		st = utf8Next[st][utf8Class[p[i]]]
		i++
	}
	if st == utf8Reject {
		*s = utf8Reject
		return false
	}
	if st != utf8Accept { // p ended inside that same character
		*s = st
		return true
	}
	// Find a character cut by the end of p: a lead byte in the last 3
	// bytes whose sequence runs past the end.
	j := len(p)
	for k := len(p) - 1; k >= i && k >= len(p)-3; k-- {
		c := p[k]
		if c < 0x80 {
			break
		}
		if c >= 0xC0 {
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > len(p)-k {
				j = k
			}
			break
		}
	}
	if !utf8.Valid(p[i:j]) {
		*s = utf8Reject
		return false
	}
	for _, c := range p[j:] {
		st = utf8Next[st][utf8Class[c]]
	}
	*s = st
	return st != utf8Reject
}

// ValidUTF8 reports whether p is entirely well-formed UTF-8, the check
// Reader applies to unfragmented text messages and close reasons, for
// callers that validate text themselves (for example after Inflate). It is
// utf8.Valid, which skips ASCII 8 bytes at a time.
func ValidUTF8(p []byte) bool { return utf8.Valid(p) }

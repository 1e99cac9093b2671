package wsproto

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Opcode is a frame's opcode (RFC 6455 §5.2).
type Opcode uint8

// Opcodes defined by RFC 6455 §5.2. 3-7 and 0xB-0xF are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode 0xB-0xF).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// Known reports whether op is defined by RFC 6455.
func (op Opcode) Known() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return true
	}
	return false
}

// String returns the opcode's name, for logs and test failures.
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode(" + strconv.Itoa(int(op)) + ")"
}

// Reserved bits of the first header byte, as they appear in Frame.Rsv.
const (
	Rsv1 uint8 = 0x4 // permessage-deflate marks the first frame of a compressed message with it (RFC 7692 §6)
	Rsv2 uint8 = 0x2
	Rsv3 uint8 = 0x1
)

// CloseCode is the status code of a close frame (RFC 6455 §7.4).
type CloseCode uint16

// Close codes from RFC 6455 §7.4.1 and the IANA registry.
const (
	CloseNormal             CloseCode = 1000
	CloseGoingAway          CloseCode = 1001
	CloseProtocolError      CloseCode = 1002
	CloseUnsupportedData    CloseCode = 1003
	CloseNoStatus           CloseCode = 1005 // never on the wire: the close frame had no payload
	CloseAbnormal           CloseCode = 1006 // never on the wire: the connection dropped without a close frame
	CloseInvalidPayload     CloseCode = 1007
	ClosePolicyViolation    CloseCode = 1008
	CloseMessageTooBig      CloseCode = 1009
	CloseMandatoryExtension CloseCode = 1010
	CloseInternalError      CloseCode = 1011
	CloseServiceRestart     CloseCode = 1012
	CloseTryAgainLater      CloseCode = 1013
	CloseBadGateway         CloseCode = 1014
)

// ValidCloseCode reports whether a peer may send c in a close frame:
// 1000-1003 and 1007-1014 (the RFC 6455 codes plus the IANA-registered
// 1012-1014), and 3000-4999 (registered libraries and private use).
// 1004-1006 and 1015 are reserved and never sent; everything else is
// unassigned.
//
// Autobahn's older cases 7.9.10-12 expect 1012-1014 to be rejected; they
// were registered after the test suite was written, and browsers send 1012
// and 1013 today, so they are accepted here.
func ValidCloseCode(c CloseCode) bool {
	switch {
	case c >= 1000 && c <= 1003:
		return true
	case c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// CloseError is a protocol violation found in a client's bytes. The server
// sends a close frame with Code (and Reason) and then closes the connection.
//
// The *CloseError values returned by Parse and Reader.Next are shared and
// read-only; copy the struct to change it.
type CloseError struct {
	Code   CloseCode
	Reason string
}

// Error implements error.
func (e *CloseError) Error() string {
	return "wsproto: close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// ErrShortFrame means the bytes do not hold a whole frame yet: keep them
// buffered, read more and call again with the longer slice.
var ErrShortFrame = errors.New("wsproto: incomplete frame")

// Violations found by Parse and Reader.Next. Shared so that reporting one
// costs no allocation.
var (
	errLength63     = &CloseError{CloseProtocolError, "64-bit payload length has its most significant bit set"}
	errTooBig       = &CloseError{CloseMessageTooBig, "message too big"}
	errNotMasked    = &CloseError{CloseProtocolError, "client frame not masked"}
	errRsv          = &CloseError{CloseProtocolError, "reserved bits set without a negotiated extension"}
	errOpcode       = &CloseError{CloseProtocolError, "reserved opcode"}
	errControlLen   = &CloseError{CloseProtocolError, "control frame payload longer than 125 bytes"}
	errControlFin   = &CloseError{CloseProtocolError, "fragmented control frame"}
	errContinuation = &CloseError{CloseProtocolError, "continuation frame without a message in progress"}
	errInterleaved  = &CloseError{CloseProtocolError, "new data frame while a fragmented message is in progress"}
	errInvalidUTF8  = &CloseError{CloseInvalidPayload, "invalid UTF-8 in text message"}
	errCloseLen     = &CloseError{CloseProtocolError, "close frame payload of 1 byte"}
	errCloseCode    = &CloseError{CloseProtocolError, "invalid close code"}
	errCloseUTF8    = &CloseError{CloseInvalidPayload, "close reason is not valid UTF-8"}
)

// MaxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const MaxControlPayload = 125

// MaxHeaderLen is the longest frame header: 2 bytes, an 8-byte length and a
// 4-byte mask key.
const MaxHeaderLen = 14

// Frame is one decoded frame. Payload aliases the bytes given to Parse and is
// still masked until Unmask runs.
type Frame struct {
	Fin     bool
	Rsv     uint8 // RSV1..3 as bits 0x4, 0x2, 0x1 (see Rsv1)
	Op      Opcode
	Masked  bool // the payload is (still) masked with Key
	Key     [4]byte
	Payload []byte
}

// header is a frame header with the payload not yet known to be complete.
type header struct {
	fin    bool
	rsv    uint8
	op     Opcode
	masked bool
	key    [4]byte
	length uint64
}

// parseHeader decodes a frame header from b. It returns the header and its
// length, or ErrShortFrame when b ends inside the header, or errLength63.
func parseHeader(b []byte) (h header, n int, err error) {
	if len(b) < 2 {
		return h, 0, ErrShortFrame
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&0x80 != 0
	h.rsv = (b0 >> 4) & 0x7
	h.op = Opcode(b0 & 0xF)
	h.masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return h, 0, ErrShortFrame
		}
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, ErrShortFrame
		}
		h.length = binary.BigEndian.Uint64(b[2:])
		if h.length>>63 != 0 {
			return h, 0, errLength63
		}
		n = 10
	default:
		h.length = uint64(l)
	}
	// Non-minimal 16- and 64-bit lengths are accepted: RFC 6455 §5.2 asks
	// senders for the minimal form, but rejecting a longer one protects
	// nothing, and gorilla, gobwas and nginx accept them too.
	if h.masked {
		if len(b) < n+4 {
			return h, 0, ErrShortFrame
		}
		copy(h.key[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// Parse decodes the frame at the start of b: header, 7/16/64-bit length and
// mask key. It checks structure only; the RFC 6455 rules about opcodes,
// reserved bits, masking and control frames are Reader's job.
//
// n is the length of the whole frame (header plus payload). Payload aliases
// b (its capacity is clipped to its length) and is still masked: call Unmask
// exactly once before reading it.
//
// Errors: ErrShortFrame when b does not hold the whole frame yet;
// *CloseError 1009 as soon as the header declares a payload longer than
// maxPayload (without waiting for it; a negative maxPayload counts as 0);
// *CloseError 1002 for a 64-bit length
// with the most significant bit set.
func Parse(b []byte, maxPayload int) (Frame, int, error) {
	h, hl, err := parseHeader(b)
	if err != nil {
		return Frame{}, 0, err
	}
	if h.length > uint64(max(maxPayload, 0)) {
		return Frame{}, 0, errTooBig
	}
	if uint64(len(b)-hl) < h.length { // compared before adding: no overflow
		return Frame{}, 0, ErrShortFrame
	}
	end := hl + int(h.length)
	return Frame{
		Fin:     h.fin,
		Rsv:     h.rsv,
		Op:      h.op,
		Masked:  h.masked,
		Key:     h.key,
		Payload: b[hl:end:end],
	}, end, nil
}

// Unmask removes the client mask from Payload in place and clears Masked, so
// calling it again does nothing. It processes 8 bytes per step.
func (f *Frame) Unmask() {
	if !f.Masked {
		return
	}
	MaskBytes(f.Key, 0, f.Payload)
	f.Masked = false
}

// MaskBytes XORs b in place with key, starting at byte pos of the key (pos
// counts payload bytes already masked; only pos%4 matters), and returns the
// position after b. Masking a payload in pieces gives the same result as
// masking it whole:
//
//	pos := 0
//	pos = MaskBytes(key, pos, p[:k])
//	pos = MaskBytes(key, pos, p[k:])
func MaskBytes(key [4]byte, pos int, b []byte) int {
	pos &= 3
	end := (pos + len(b)) & 3
	if len(b) >= 8 {
		// Rotate the key so that its first byte lines up with b[0], then
		// XOR 8 bytes per step (the loads and stores compile to single
		// unaligned moves on amd64 and arm64).
		k := binary.LittleEndian.Uint32(key[:])
		if pos != 0 {
			k = k>>(8*uint(pos)) | k<<(32-8*uint(pos))
		}
		k64 := uint64(k) | uint64(k)<<32
		for len(b) >= 32 {
			v0 := binary.LittleEndian.Uint64(b[0:8])
			v1 := binary.LittleEndian.Uint64(b[8:16])
			v2 := binary.LittleEndian.Uint64(b[16:24])
			v3 := binary.LittleEndian.Uint64(b[24:32])
			binary.LittleEndian.PutUint64(b[0:8], v0^k64)
			binary.LittleEndian.PutUint64(b[8:16], v1^k64)
			binary.LittleEndian.PutUint64(b[16:24], v2^k64)
			binary.LittleEndian.PutUint64(b[24:32], v3^k64)
			b = b[32:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
		// Every 8-byte step keeps the key phase, so pos is unchanged here.
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return end
}

// AppendHeader appends a frame header for a payload of n bytes. Server frames
// are never masked (RFC 6455 §5.1). rsv holds RSV1..3 as bits 0x4, 0x2, 0x1.
func AppendHeader(dst []byte, fin bool, rsv uint8, op Opcode, n int) []byte {
	b0 := byte(op&0xF) | (rsv&0x7)<<4
	if fin {
		b0 |= 0x80
	}
	switch {
	case n <= 125:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		u := uint64(n)
		return append(dst, b0, 127,
			byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
			byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	}
}

// AppendFrame appends a single final, unmasked frame carrying payload.
func AppendFrame(dst []byte, op Opcode, payload []byte) []byte {
	dst = AppendHeader(dst, true, 0, op, len(payload))
	return append(dst, payload...)
}

// AppendClose appends a close frame with code and reason. The reason is
// truncated to fit the 125-byte control payload, on a UTF-8 character
// boundary. A code that must not appear on the wire (CloseNoStatus,
// CloseAbnormal, 1015, or anything ValidCloseCode rejects) gives a close
// frame with an empty payload.
func AppendClose(dst []byte, code CloseCode, reason string) []byte {
	if !ValidCloseCode(code) {
		return append(dst, 0x80|byte(OpClose), 0)
	}
	const maxReason = MaxControlPayload - 2
	if len(reason) > maxReason {
		cut := maxReason
		// Back up to the first byte of the character that straddles the
		// limit (continuation bytes are 10xxxxxx), at most 3 bytes.
		for i := 0; i < 3 && cut > 0 && reason[cut]&0xC0 == 0x80; i++ {
			cut--
		}
		reason = reason[:cut]
	}
	dst = append(dst, 0x80|byte(OpClose), byte(2+len(reason)), byte(code>>8), byte(code))
	return append(dst, reason...)
}

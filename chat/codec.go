package chat

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// request is one client action as decoded from its JSON. Fields not used by
// an action are ignored.
type request struct {
	ID        json.RawMessage `json:"id"`
	Action    string          `json:"action"`
	App       string          `json:"app"`
	Token     string          `json:"token"`
	SessionID SessionID       `json:"session_id"`
	To        string          `json:"to"`
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
	CID       string          `json:"cid"`
	Before    uint64          `json:"before"`
	After     uint64          `json:"after"`
	Limit     int             `json:"limit"`
	Seq       uint64          `json:"seq"`
	UID       string          `json:"uid"`
	UIDs      []string        `json:"uids"`
	Name      string          `json:"name"`
	Avatar    string          `json:"avatar"`
	Message   string          `json:"message"`  // friend_request
	Remark    string          `json:"remark"`   // friend_remark
	Cursor    string          `json:"cursor"`   // friends, blocks: continue after this
	Platform  string          `json:"platform"` // login (devices.go)
	Keyword   string          `json:"keyword"`  // sessions (sessionlist.go)
	Rank      int             `json:"rank"`     // session_pin

	opFields // message operations' fields (msgops.go); decoded by encoding/json
}

// decodeRequest parses b: the scanner first (fast, few allocations), and
// encoding/json for anything it leaves alone (escaped or oddly cased keys)
// and for the exact words of a syntax error. The id is checked to be a string
// or a number so it can be echoed verbatim in reply_to. r's slices may alias
// b.
func decodeRequest(b []byte, r *request) *Error {
	fe, ok := decodeFast(b, r)
	switch {
	case ok && fe != nil:
		if len(r.ID) == 0 || !validID(r.ID) {
			r.ID = peekID(b)
		}
		return Errf(CodeBadRequest, "bad JSON: field \""+fe.field+"\" must be "+fe.want)
	case !ok:
		// A heap copy for encoding/json (the rare path), so that r itself
		// never escapes: callers keep it on their stack.
		slow := new(request)
		err := json.Unmarshal(b, slow)
		*r = *slow
		if err != nil {
			msg := "bad JSON: " + err.Error()
			if se, ok := err.(*json.SyntaxError); ok {
				msg = "bad JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
			} else if te, ok := err.(*json.UnmarshalTypeError); ok {
				want := te.Type.String()
				if te.Type.Kind() == reflect.Uint64 {
					want = "uint64" // SessionID: say what it is on the wire
				}
				msg = "bad JSON: field \"" + te.Field + "\" must be " + want
			}
			r.ID = peekID(b)
			return Errf(CodeBadRequest, msg)
		}
	}
	if len(r.ID) > 0 && !validID(r.ID) {
		r.ID = nil
		return Errf(CodeBadRequest, "id must be a string or a number of at most 64 bytes")
	}
	if r.Action == "" {
		return Errf(CodeBadRequest, "missing action")
	}
	return nil
}

func validID(id json.RawMessage) bool {
	if len(id) == 0 || len(id) > 66 {
		return false
	}
	switch id[0] {
	case '"':
		return true // already valid JSON
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return bytes.Equal(id, []byte("null"))
}

// peekID extracts the request id from a payload that failed to decode as a
// whole (truncated, or a bad field later on), so the error can still be
// correlated: it reads top-level tokens until the id or the first error.
func peekID(b []byte) json.RawMessage {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil
		}
		if k == "id" {
			if validID(v) {
				return append(json.RawMessage(nil), v...)
			}
			return nil
		}
	}
	return nil
}

func appendReplyTo(dst []byte, id []byte) []byte {
	dst = append(dst, `{"reply_to":`...)
	if len(id) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

// appendError encodes {"reply_to":id,"ok":false,"error":{…}}.
func appendError(dst []byte, id []byte, code Code, msg string) []byte {
	dst = appendReplyTo(dst, id)
	dst = append(dst, `,"ok":false,"error":{"code":`...)
	dst = appendString(dst, string(code))
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, msg)
	return append(dst, "}}"...)
}

// appendOK encodes {"reply_to":id,"ok":true,"data":data} with data marshalled
// by encoding/json (cold paths).
func appendOK(dst []byte, id []byte, data any) []byte {
	dst = appendReplyTo(dst, id)
	dst = append(dst, `,"ok":true`...)
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			panic("chat: encode reply: " + err.Error())
		}
		dst = append(dst, `,"data":`...)
		dst = append(dst, b...)
	}
	return append(dst, '}')
}

// appendLoginOK encodes the reply to a login (hot in connection bursts):
// what appendOK makes of a loginData, without encoding/json.
func appendLoginOK(dst []byte, id []byte, d *loginData) []byte {
	dst = appendReplyTo(dst, id)
	dst = append(dst, `,"ok":true,"data":{"uid":`...)
	dst = appendString(dst, d.UID)
	dst = append(dst, `,"nickname":`...)
	dst = appendString(dst, d.Nickname)
	if d.Avatar != "" {
		dst = append(dst, `,"avatar":`...)
		dst = appendString(dst, d.Avatar)
	}
	dst = append(dst, `,"server_time":`...)
	dst = strconv.AppendInt(dst, d.ServerTime, 10)
	dst = append(dst, `,"expires_at":`...)
	dst = strconv.AppendInt(dst, d.ExpiresAt, 10)
	return append(dst, "}}"...)
}

// appendSendAck encodes the reply to a send (hot path).
func appendSendAck(dst []byte, id []byte, r *SendResult) []byte {
	dst = appendReplyTo(dst, id)
	dst = append(dst, `,"ok":true,"data":{"session_id":`...)
	dst = strconv.AppendUint(dst, uint64(r.Session), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"msg_id":"`...)
	dst = strconv.AppendUint(dst, uint64(r.Session), 10)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `","created_at":`...)
	dst = strconv.AppendInt(dst, r.CreatedAt, 10)
	if r.Duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	return append(dst, "}}"...)
}

// appendMessage encodes a stored message as a JSON object (hot path: used
// once per message for the event every recipient shares).
func appendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, `{"session_id":`...)
	dst = strconv.AppendUint(dst, uint64(m.Session), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, `,"msg_id":"`...)
	dst = strconv.AppendUint(dst, uint64(m.Session), 10)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, `","from":`...)
	dst = appendString(dst, m.From)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, m.Type)
	dst = append(dst, `,"content":`...)
	if len(m.Content) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, m.Content...)
	}
	if m.CID != "" {
		dst = append(dst, `,"cid":`...)
		dst = appendString(dst, m.CID)
	}
	dst = append(dst, `,"created_at":`...)
	dst = strconv.AppendInt(dst, m.CreatedAt, 10)
	if len(m.Mentions) > 0 || m.MentionAll {
		dst = appendMentions(dst, m) // mentions.go
	}
	if m.EditedAt != 0 {
		dst = append(dst, `,"edited_at":`...)
		dst = strconv.AppendInt(dst, m.EditedAt, 10)
		dst = append(dst, `,"edit_count":`...)
		dst = strconv.AppendUint(dst, uint64(m.Edits), 10)
	}
	return append(dst, '}')
}

// MarshalJSON encodes m as the protocol's message object with the same
// encoder as the message event, msg_id included: a message read back
// through history, sync or the server API is the object its recipients
// were pushed.
func (m Message) MarshalJSON() ([]byte, error) {
	return appendMessage(nil, &m), nil
}

// appendMessageEvent encodes {"event":"message","data":{…}}.
func appendMessageEvent(dst []byte, m *Message) []byte {
	dst = append(dst, `{"event":"message","data":`...)
	dst = appendMessage(dst, m)
	return append(dst, '}')
}

// appendEvent encodes {"event":name,"data":data} with encoding/json (cold).
func appendEvent(dst []byte, name string, data any) []byte {
	b, err := json.Marshal(data)
	if err != nil {
		panic("chat: encode event: " + err.Error())
	}
	dst = append(dst, `{"event":`...)
	dst = appendString(dst, name)
	dst = append(dst, `,"data":`...)
	dst = append(dst, b...)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// control characters, quotes, backslashes and <, >, & (for HTML embedding)
// are escaped; U+2028/2029 too.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

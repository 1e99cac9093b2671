package storage

import (
	"encoding/binary"
	"errors"
	"strings"

	"chatd/chat"
)

// ErrCorrupt is wrapped by every error about a key or value this build
// cannot decode.
var ErrCorrupt = errors.New("storage: corrupt record")

// recordV1 is the first byte of every value this build writes. A later
// encoding gets a new version byte; decoders switch on it.
const recordV1 = 1

// msgExtV2 is the first byte of a message value with extended fields
// (an edit: chat/msgops.go; mentions: chat/mentions.go): version 1's
// fields, then a flags byte and, by flag, varint(EditedAt)
// uvarint(Edits) [msgEdited]; uvarint(n) n×str(uid) [msgMentions]; nothing
// more for msgMentionAll. Plain messages stay version 1, byte for byte.
const msgExtV2 = 2

const (
	msgEdited     = 1 << iota // EditedAt, Edits
	msgMentions               // Mentions
	msgMentionAll             // MentionAll
)

// ---- primitives ----

// appendStr appends s with a uvarint length prefix. Length-prefixed strings
// are prefix-free, so keys built from them never collide whatever bytes an
// id holds, and a prefix of whole fields selects exactly one owner.
func appendStr[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// reader decodes one value. The first failure sticks in bad; later calls
// return zero values, so a decoder checks once at the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) byte() byte {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// u64 reads 8 bytes big-endian (appendU64).
func (r *reader) u64() uint64 {
	if r.bad || len(r.b) < 8 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// raw returns the next length-prefixed field, aliasing the value.
func (r *reader) raw() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.raw()) }

// bytes returns a copy of the next length-prefixed field; nil when empty.
func (r *reader) bytes() []byte {
	v := r.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// version consumes the version byte and reports whether it is known.
func (r *reader) version() bool {
	if r.byte() != recordV1 {
		r.bad = true
	}
	return !r.bad
}

// end reports whether the whole value decoded with nothing left over.
func (r *reader) end() bool { return !r.bad && len(r.b) == 0 }

// ---- keys ----

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// userKey: str(app) str(uid). Bucket users.
func appendUserKey(dst []byte, app, uid string) []byte {
	return appendStr(appendStr(dst, app), uid)
}

// pairKey: str(app) str(lo) str(hi) with lo <= hi. Bucket pairs.
func appendPairKey(dst []byte, app string, pair [2]string) []byte {
	a, b := pair[0], pair[1]
	if b < a {
		a, b = b, a
	}
	return appendStr(appendStr(appendStr(dst, app), a), b)
}

// memberKey: u64(session) uid. Bucket members.
func appendMemberKey(dst []byte, id chat.SessionID, uid string) []byte {
	return append(appendU64(dst, uint64(id)), uid...)
}

// msgKey: u64(session) u64(seq). Bucket msgs.
func appendMsgKey(dst []byte, id chat.SessionID, seq uint64) []byte {
	return appendU64(appendU64(dst, uint64(id)), seq)
}

func parseMsgKey(k []byte) (chat.SessionID, uint64, bool) {
	if len(k) != 16 {
		return 0, 0, false
	}
	return chat.SessionID(binary.BigEndian.Uint64(k)), binary.BigEndian.Uint64(k[8:]), true
}

// ---- messages (hot path) ----

// appendMessage appends m's value. Session and Seq live in the key.
//
//	0x01 str(App) str(From) str(Type) str(CID) varint(CreatedAt) bytes(Content)
//
// The four strings come first and together so that a decoder turns them
// into Go strings with one allocation.
func appendMessage(dst []byte, m *chat.Message) []byte {
	var flags byte
	if m.EditedAt != 0 || m.Edits != 0 {
		flags |= msgEdited
	}
	if len(m.Mentions) > 0 {
		flags |= msgMentions
	}
	if m.MentionAll {
		flags |= msgMentionAll
	}
	if flags != 0 {
		dst = append(dst, msgExtV2)
	} else {
		dst = append(dst, recordV1)
	}
	dst = appendStr(dst, m.App)
	dst = appendStr(dst, m.From)
	dst = appendStr(dst, m.Type)
	dst = appendStr(dst, m.CID)
	dst = binary.AppendVarint(dst, m.CreatedAt)
	dst = appendBytes(dst, m.Content)
	if flags == 0 {
		return dst
	}
	dst = append(dst, flags)
	if flags&msgEdited != 0 {
		dst = binary.AppendVarint(dst, m.EditedAt)
		dst = binary.AppendUvarint(dst, uint64(m.Edits))
	}
	if flags&msgMentions != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(m.Mentions)))
		for _, uid := range m.Mentions {
			dst = appendStr(dst, uid)
		}
	}
	return dst
}

// maxMessageLen bounds len(appendMessage(nil, m)), for sizing buffers.
func maxMessageLen(m *chat.Message) int {
	n := 2 + 8*binary.MaxVarintLen64 + binary.MaxVarintLen64 +
		len(m.App) + len(m.From) + len(m.Type) + len(m.CID) + len(m.Content)
	for _, uid := range m.Mentions {
		n += binary.MaxVarintLen64 + len(uid)
	}
	return n
}

// messageVersion consumes a message value's version byte and reports
// whether it has extended fields (msgExtV2); an unknown byte marks r bad.
func (r *reader) messageVersion() (ext bool) {
	switch r.byte() {
	case recordV1:
		return false
	case msgExtV2:
		return true
	}
	r.bad = true
	return false
}

// msgView is a parsed message value. Its slices alias the value.
type msgView struct {
	strs    []byte   // str(App) str(From) str(Type) str(CID), prefixes included
	ends    [4]int32 // end offset in strs of each string; each starts after its prefix
	lens    [4]int32 // length of each string
	created int64
	content []byte
	// version 2 only
	edited     int64  // EditedAt
	edits      uint32 // Edits
	mentions   []byte // n×str(uid), aliasing the value
	nMentions  int
	mentionAll bool
}

func parseMessage(v []byte, mv *msgView) bool {
	r := reader{b: v}
	ext := r.messageVersion()
	if r.bad {
		return false
	}
	start := r.b
	for i := range mv.ends {
		s := r.raw()
		if r.bad {
			return false
		}
		mv.ends[i] = int32(len(start) - len(r.b))
		mv.lens[i] = int32(len(s))
	}
	mv.strs = start[:len(start)-len(r.b)]
	mv.created = r.varint()
	mv.content = r.raw()
	mv.edited, mv.edits, mv.mentions, mv.nMentions, mv.mentionAll = 0, 0, nil, 0, false
	if ext {
		flags := r.byte()
		if flags&msgEdited != 0 {
			mv.edited = r.varint()
			mv.edits = uint32(r.uvarint())
		}
		if flags&msgMentions != 0 {
			n := r.uvarint()
			start := r.b
			for i := uint64(0); i < n && !r.bad; i++ {
				r.raw()
			}
			mv.mentions, mv.nMentions = start[:len(start)-len(r.b)], int(n)
		}
		mv.mentionAll = flags&msgMentionAll != 0
	}
	return r.end()
}

// fill sets m's fields from mv, with strs (the Go string of mv.strs) and
// content already copied out by the caller.
func (mv *msgView) fill(m *chat.Message, strs string, content []byte) {
	m.App, m.From, m.Type, m.CID = mv.field(strs, 0), mv.field(strs, 1), mv.field(strs, 2), mv.field(strs, 3)
	m.CreatedAt = mv.created
	m.Content = content
	m.EditedAt, m.Edits, m.MentionAll = mv.edited, mv.edits, mv.mentionAll
	m.Mentions = nil
	if mv.nMentions > 0 {
		r := reader{b: mv.mentions}
		m.Mentions = make([]string, 0, mv.nMentions)
		for range mv.nMentions {
			m.Mentions = append(m.Mentions, r.str()) // copies
		}
	}
}

// field returns string i (App, From, Type, CID) of strs.
func (mv *msgView) field(strs string, i int) string {
	return strs[mv.ends[i]-mv.lens[i] : mv.ends[i]]
}

// decodeMessage decodes one value into m, copying everything out of v.
// Session and Seq come from the key and are left alone.
func decodeMessage(v []byte, m *chat.Message) bool {
	var mv msgView
	if !parseMessage(v, &mv) {
		return false
	}
	var content []byte
	if len(mv.content) > 0 {
		content = append([]byte(nil), mv.content...)
	}
	mv.fill(m, string(mv.strs), content)
	return true
}

// decodePage decodes a page of parsed messages, copying out of the
// transaction with three allocations: the slice, one string holding every
// message's strings and one buffer holding every Content (each Content is
// capped, so appending to one never touches its neighbour).
func decodePage(views []msgView, keys []msgKeyVal) []chat.Message {
	if len(views) == 0 {
		return nil
	}
	var nstr, ncontent int
	for i := range views {
		nstr += len(views[i].strs)
		ncontent += len(views[i].content)
	}
	var sb strings.Builder
	sb.Grow(nstr)
	for i := range views {
		sb.Write(views[i].strs)
	}
	all := sb.String()
	var contents []byte
	if ncontent > 0 {
		contents = make([]byte, 0, ncontent)
	}
	out := make([]chat.Message, len(views))
	off := 0
	for i := range views {
		mv := &views[i]
		var content []byte
		if len(mv.content) > 0 {
			start := len(contents)
			contents = append(contents, mv.content...)
			content = contents[start:len(contents):len(contents)]
		}
		n := len(mv.strs)
		mv.fill(&out[i], all[off:off+n], content)
		off += n
		out[i].Session, out[i].Seq = keys[i].session, keys[i].seq
	}
	return out
}

// msgKeyVal is a parsed message key.
type msgKeyVal struct {
	session chat.SessionID
	seq     uint64
}

// ---- cold records ----

// App: 0x01 str(ID) str(Name) str(Secret) varint(CreatedAt)
// [uvarint(MaxUsers) uvarint(MaxGroups)]
//
// The limits were added later: a record without them (written before,
// or with both zero) decodes with zero limits, so old files read as they
// did, and an app without limits is written as before.
func appendApp(dst []byte, a *chat.App) []byte {
	v2 := a.RetentionDays != 0
	if v2 {
		dst = append(dst, appRecordV2)
	} else {
		dst = append(dst, recordV1)
	}
	dst = appendStr(dst, a.ID)
	dst = appendStr(dst, a.Name)
	dst = appendStr(dst, a.Secret)
	dst = binary.AppendVarint(dst, a.CreatedAt)
	if v2 {
		dst = binary.AppendVarint(dst, int64(a.RetentionDays))
	}
	if a.MaxUsers != 0 || a.MaxGroups != 0 {
		dst = binary.AppendUvarint(dst, uint64(max(a.MaxUsers, 0)))
		dst = binary.AppendUvarint(dst, uint64(max(a.MaxGroups, 0)))
	}
	return dst
}

// appRecordV2 is an App record with RetentionDays after CreatedAt. An app
// without a retention of its own is still written as version 1, which
// every chatd reads.
const appRecordV2 = 2

func decodeApp(v []byte, a *chat.App) bool {
	r := reader{b: v}
	ver := r.byte()
	if ver != recordV1 && ver != appRecordV2 {
		return false
	}
	a.ID, a.Name, a.Secret = r.str(), r.str(), r.str()
	a.CreatedAt = r.varint()
	a.RetentionDays = 0
	if ver == appRecordV2 {
		a.RetentionDays = int(r.varint())
	}
	a.MaxUsers, a.MaxGroups = 0, 0
	if !r.bad && len(r.b) > 0 {
		a.MaxUsers, a.MaxGroups = int(r.uvarint()), int(r.uvarint())
	}
	return r.end()
}

// User: 0x01 str(App) str(UID) str(Nickname) str(Avatar) bytes(Extra)
// varint(CreatedAt) varint(UpdatedAt)
func appendUser(dst []byte, u *chat.User) []byte {
	dst = append(dst, recordV1)
	dst = appendStr(dst, u.App)
	dst = appendStr(dst, u.UID)
	dst = appendStr(dst, u.Nickname)
	dst = appendStr(dst, u.Avatar)
	dst = appendBytes(dst, u.Extra)
	dst = binary.AppendVarint(dst, u.CreatedAt)
	return binary.AppendVarint(dst, u.UpdatedAt)
}

func decodeUser(v []byte, u *chat.User) bool {
	r := reader{b: v}
	r.version()
	u.App, u.UID, u.Nickname, u.Avatar = r.str(), r.str(), r.str(), r.str()
	u.Extra = r.bytes()
	u.CreatedAt, u.UpdatedAt = r.varint(), r.varint()
	return r.end()
}

// Token: 0x01 str(App) str(UID) varint(CreatedAt) varint(ExpiresAt).
// The hash is the key.
func appendToken(dst []byte, t *chat.Token) []byte {
	dst = append(dst, recordV1)
	dst = appendStr(dst, t.App)
	dst = appendStr(dst, t.UID)
	dst = binary.AppendVarint(dst, t.CreatedAt)
	return binary.AppendVarint(dst, t.ExpiresAt)
}

func decodeToken(v []byte, t *chat.Token) bool {
	r := reader{b: v}
	r.version()
	t.App, t.UID = r.str(), r.str()
	t.CreatedAt, t.ExpiresAt = r.varint(), r.varint()
	return r.end()
}

// Session: 0x01 str(App) u8(Kind) str(Name) str(Avatar) str(Owner)
// str(Pair[0]) str(Pair[1]) varint(CreatedAt) uvarint(LastSeq)
// varint(LastAt) str(LastFrom) str(LastType) str(LastPreview).
// The id is the key.
func appendSession(dst []byte, s *chat.Session) []byte {
	dst = append(dst, recordV1)
	dst = appendStr(dst, s.App)
	dst = append(dst, byte(s.Kind))
	dst = appendStr(dst, s.Name)
	dst = appendStr(dst, s.Avatar)
	dst = appendStr(dst, s.Owner)
	dst = appendStr(dst, s.Pair[0])
	dst = appendStr(dst, s.Pair[1])
	dst = binary.AppendVarint(dst, s.CreatedAt)
	dst = binary.AppendUvarint(dst, s.LastSeq)
	dst = binary.AppendVarint(dst, s.LastAt)
	dst = appendStr(dst, s.LastFrom)
	dst = appendStr(dst, s.LastType)
	return appendStr(dst, s.LastPreview)
}

func decodeSession(v []byte, s *chat.Session) bool {
	r := reader{b: v}
	r.version()
	s.App = r.str()
	s.Kind = chat.Kind(r.byte())
	s.Name, s.Avatar, s.Owner = r.str(), r.str(), r.str()
	s.Pair[0], s.Pair[1] = r.str(), r.str()
	s.CreatedAt = r.varint()
	s.LastSeq = r.uvarint()
	s.LastAt = r.varint()
	s.LastFrom, s.LastType, s.LastPreview = r.str(), r.str(), r.str()
	return r.end()
}

// sessionHead is what Apply needs of a stored session without decoding
// all of it. Its slices alias the value.
type sessionHead struct {
	app  []byte
	kind chat.Kind
	pair [2][]byte
}

func parseSessionHead(v []byte, h *sessionHead) bool {
	r := reader{b: v}
	r.version()
	h.app = r.raw()
	h.kind = chat.Kind(r.byte())
	r.raw() // Name
	r.raw() // Avatar
	r.raw() // Owner
	h.pair[0], h.pair[1] = r.raw(), r.raw()
	return !r.bad
}

// Member: 0x01 u8(Role) uvarint(ReadSeq) varint(JoinedAt).
// Session and UID are the key.
func appendMember(dst []byte, m *chat.Member) []byte {
	dst = append(dst, recordV1, byte(m.Role))
	dst = binary.AppendUvarint(dst, m.ReadSeq)
	return binary.AppendVarint(dst, m.JoinedAt)
}

func decodeMember(v []byte, m *chat.Member) bool {
	r := reader{b: v}
	r.version()
	m.Role = chat.Role(r.byte())
	m.ReadSeq = r.uvarint()
	m.JoinedAt = r.varint()
	return r.end()
}

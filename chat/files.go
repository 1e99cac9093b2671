package chat

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
)

// Files: what the core knows of uploads (the bytes are the HTTP side's,
// under the data folder; see httpapi/upload.go).
//
// A file is identified within its app by the hex SHA-256 of its content,
// so the same bytes uploaded twice are one file. Its metadata, who may
// send it and where it was sent are records:
//
//   - "file"     app\x00id            → FileMeta (JSON)
//   - "file.up"  app\x00id\x00uid     → uploader: uid may send it ("" is the app backend)
//   - "file.ref" app\x00id\x00sid seq → a message (session, seq, big-endian) that carries it
//   - "file.use" app                  → the app's stored bytes (quota), decimal
//   - "file.av"  app\x00id\x00uid     → uid's avatar is this file
//
// A message of type image, voice, video or file names an upload by
// "file_id" (or by its url "chatd-file:<id>"); the core checks that the
// sender may use it and that its type fits, fills url, size, mime and
// (images) width and height, and writes the file.ref record in the same
// commit as the message. Members of a session a file was sent into may
// read it, and so may its uploaders. A user's avatar may be an upload too
// ("chatd-file:<id>", an image of the app): every user of the app may
// read it while it is someone's avatar.

// Record kinds of files.
const (
	fileKind    = "file"
	fileUpKind  = "file.up"
	fileRefKind = "file.ref"
	fileUseKind = "file.use"
	fileAvKind  = "file.av"
)

// FileURLScheme prefixes the url of a message that carries an upload:
// "chatd-file:<id>". Clients ask chatd for a signed URL to fetch it.
const FileURLScheme = "chatd-file:"

// FileMeta describes one stored upload.
type FileMeta struct {
	ID        string `json:"file_id"` // hex SHA-256 of the content
	App       string `json:"app"`
	Owner     string `json:"owner"` // first uploader ("" is the app backend)
	Type      string `json:"type"`  // image, voice, video or file
	MIME      string `json:"mime"`  // sniffed from the content
	Size      int64  `json:"size"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	Name      string `json:"name,omitempty"` // the uploader's file name (display only)
	CreatedAt int64  `json:"created_at"`     // unix ms
}

// ValidFileID reports whether id has the form of a file id: 64 lowercase
// hex digits (so no path can hide in it).
func ValidFileID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f') {
			return false
		}
	}
	return true
}

var errBadFileID = Errf(CodeBadRequest, "file_id must be 64 lowercase hex digits, as the upload answered")

func fileKey(app, id string) []byte { return []byte(app + "\x00" + id) }

// File returns the metadata of an upload.
func (c *Core) File(ctx context.Context, app, id string) (FileMeta, error) {
	if !ValidFileID(id) {
		return FileMeta{}, errBadFileID
	}
	b, err := c.store.Record(ctx, fileKind, fileKey(app, id))
	if errors.Is(err, ErrNotFound) {
		return FileMeta{}, Errf(CodeNotFound, "no file "+id)
	}
	if err != nil {
		return FileMeta{}, err
	}
	var m FileMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return FileMeta{}, err
	}
	return m, nil
}

// AppFileBytes returns the bytes of uploads stored for app.
func (c *Core) AppFileBytes(ctx context.Context, app string) (int64, error) {
	b, err := c.store.Record(ctx, fileUseKind, []byte(app))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int64
	err = json.Unmarshal(b, &n)
	return n, err
}

// AddFile records an upload by uploader (a uid, or "" for the app
// backend). When the app already has the file, its metadata stays and
// only the uploader is added; created reports which. quota (> 0) caps the
// app's stored bytes: a new file past it is too_large.
func (c *Core) AddFile(ctx context.Context, m FileMeta, uploader string, quota int64) (FileMeta, bool, error) {
	if !ValidFileID(m.ID) {
		return FileMeta{}, false, errBadFileID
	}
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	up := Record{Kind: fileUpKind, Key: append(fileKey(m.App, m.ID), append([]byte{0}, uploader...)...), Value: []byte("{}")}
	if old, err := c.File(ctx, m.App, m.ID); err == nil {
		return old, false, c.write(ctx, &Batch{Records: []Record{up}})
	} else if ce := (*Error)(nil); !errors.As(err, &ce) || ce.Code != CodeNotFound {
		return FileMeta{}, false, err
	}
	used, err := c.AppFileBytes(ctx, m.App)
	if err != nil {
		return FileMeta{}, false, err
	}
	if quota > 0 && used+m.Size > quota {
		return FileMeta{}, false, Errf(CodeTooLarge, "the app's upload quota is full ("+itoa(uint64(used))+" of "+itoa(uint64(quota))+" bytes used)")
	}
	m.Owner = uploader
	m.CreatedAt = c.nowMS()
	mb, _ := json.Marshal(m)
	ub, _ := json.Marshal(used + m.Size)
	err = c.write(ctx, &Batch{Records: []Record{{Kind: fileKind, Key: fileKey(m.App, m.ID), Value: mb}, up,
		{Kind: fileUseKind, Key: []byte(m.App), Value: ub}}})
	return m, err == nil, err
}

// CanReadFile reports (nil) whether uid may read file id of app: an
// uploader of it, or a member of a session it was sent into.
func (c *Core) CanReadFile(ctx context.Context, app, uid, id string) error {
	if _, err := c.File(ctx, app, id); err != nil {
		return err
	}
	if _, err := c.store.Record(ctx, fileUpKind, append(fileKey(app, id), append([]byte{0}, uid...)...)); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if avs, err := c.store.ScanRecords(ctx, fileAvKind, append(fileKey(app, id), 0), nil, 1, false); err != nil {
		return err
	} else if len(avs) > 0 {
		return nil // an avatar: any user of the app sees it
	}
	refs, err := c.store.ScanRecords(ctx, fileRefKind, append(fileKey(app, id), 0), nil, 0, false)
	if err != nil {
		return err
	}
	seen := map[SessionID]bool{}
	for _, r := range refs {
		sid := SessionID(binary.BigEndian.Uint64(r.Key[len(r.Key)-16:]))
		if seen[sid] {
			continue
		}
		seen[sid] = true
		if _, err := c.store.Member(ctx, sid, uid); err == nil {
			return nil
		}
	}
	return Errf(CodeForbidden, "file "+id+" was not sent into any session you are a member of")
}

var (
	fileIDField = []byte(`"file_id"`)
	fileScheme  = []byte(FileURLScheme)
)

// mentionsFile reports whether content may name an upload.
func mentionsFile(content []byte) bool {
	return bytes.Contains(content, fileIDField) || bytes.Contains(content, fileScheme)
}

// resolveFile fills in the upload a media message names, after checking
// that in.From may send it and that its type fits, and returns the
// attach that records the reference with the message.
func (c *Core) resolveFile(ctx context.Context, app string, in *SendInput) (func(m *Message, b *Batch), error) {
	switch in.Type {
	case "image", "voice", "video", "file":
	default:
		return nil, Errf(CodeBadRequest, "uploads (file_id, chatd-file: urls) go in image, voice, video and file messages, not "+clip(in.Type, 32))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(in.Content, &fields); err != nil {
		return nil, Errf(CodeBadRequest, "content must be a JSON object")
	}
	var id string
	if raw, ok := fields["file_id"]; ok {
		if err := json.Unmarshal(raw, &id); err != nil {
			return nil, Errf(CodeBadRequest, "file_id must be a string")
		}
	} else {
		var u string
		if raw, ok := fields["url"]; ok && json.Unmarshal(raw, &u) == nil && len(u) > len(FileURLScheme) && u[:len(FileURLScheme)] == FileURLScheme {
			id = u[len(FileURLScheme):]
		}
	}
	if id == "" && fields["file_id"] == nil {
		return nil, nil // "file_id" appeared in a value, not as the field
	}
	if !ValidFileID(id) {
		return nil, errBadFileID
	}
	m, err := c.File(ctx, app, id)
	if err != nil {
		return nil, err
	}
	if m.Type != in.Type {
		return nil, Errf(CodeBadRequest, "file "+id+" was uploaded as "+m.Type+", not "+in.Type)
	}
	if in.From != "" {
		if err := c.CanReadFile(ctx, app, in.From, id); err != nil {
			return nil, Errf(CodeForbidden, "you may not send file "+id+": upload it yourself, or forward it from a session you are in")
		}
	}
	set := func(k string, v any) { b, _ := json.Marshal(v); fields[k] = b }
	set("file_id", id)
	set("url", FileURLScheme+id)
	set("size", m.Size)
	set("mime", m.MIME)
	if m.Width > 0 {
		set("width", m.Width)
		set("height", m.Height)
	}
	if _, ok := fields["name"]; !ok && m.Name != "" {
		set("name", m.Name)
	}
	in.Content, _ = json.Marshal(fields)
	key := fileKey(app, id)
	return func(msg *Message, b *Batch) {
		k := make([]byte, 0, len(key)+17)
		k = append(append(k, key...), 0)
		k = binary.BigEndian.AppendUint64(k, uint64(msg.Session))
		k = binary.BigEndian.AppendUint64(k, msg.Seq)
		b.Records = append(b.Records, Record{Kind: fileRefKind, Key: k, Value: []byte("{}")})
	}, nil
}

// avatarFile checks an avatar that names an upload and returns the
// record that marks it as uid's avatar.
func (c *Core) avatarFile(ctx context.Context, app, uid, avatar string) (Record, error) {
	id := avatar[len(FileURLScheme):]
	if !ValidFileID(id) {
		return Record{}, urlError("avatar", "names an upload whose id is not 64 lowercase hex digits")
	}
	m, err := c.File(ctx, app, id)
	if err != nil {
		return Record{}, err
	}
	if m.Type != "image" {
		return Record{}, Errf(CodeBadRequest, "avatar: file "+id+" was uploaded as "+m.Type+", not image")
	}
	return Record{Kind: fileAvKind, Key: append(fileKey(app, id), append([]byte{0}, uid...)...), Value: []byte("{}")}, nil
}

// FileGC is what one garbage-collection pass of uploads did.
type FileGC struct {
	Removed    []FileMeta // files whose records were deleted: remove their bytes
	StaleRefs  int        // references to messages that no longer exist, deleted
	KeptInUse  int        // files still referenced
	KeptRecent int        // unsent files younger than the grace period
	// Kept lists the ids of the files still recorded (the blobs and
	// cached copies a cluster node keeps; httpapi/blobs.go).
	Kept []string
}

// CollectFiles applies the garbage-collection rule to app's uploads: a
// reference whose message no longer exists (retention) is dropped; a file
// with no reference left that was uploaded more than grace ago (never
// sent, or every message carrying it gone) is deleted, its records first;
// the caller then removes its bytes.
func (c *Core) CollectFiles(ctx context.Context, app string, grace int64) (FileGC, error) {
	var gc FileGC
	recs, err := c.store.ScanRecords(ctx, fileKind, []byte(app+"\x00"), nil, 0, false)
	if err != nil {
		return gc, err
	}
	now := c.nowMS()
	for _, r := range recs {
		var m FileMeta
		if json.Unmarshal(r.Value, &m) != nil {
			gc.Kept = append(gc.Kept, string(r.Key[len(app)+1:]))
			continue
		}
		refs, err := c.store.ScanRecords(ctx, fileRefKind, append(fileKey(app, m.ID), 0), nil, 0, false)
		if err != nil {
			return gc, err
		}
		live := 0
		var dead []RecordKey
		for _, ref := range refs {
			sid := SessionID(binary.BigEndian.Uint64(ref.Key[len(ref.Key)-16:]))
			seq := binary.BigEndian.Uint64(ref.Key[len(ref.Key)-8:])
			ms, err := c.store.Messages(ctx, sid, seq, seq, 1, false)
			if err != nil {
				return gc, err
			}
			if len(ms) == 1 && ms[0].Seq == seq {
				live++
			} else {
				dead = append(dead, RecordKey{Kind: fileRefKind, Key: ref.Key})
			}
		}
		avs, err := c.store.ScanRecords(ctx, fileAvKind, append(fileKey(app, m.ID), 0), nil, 0, false)
		if err != nil {
			return gc, err
		}
		for _, av := range avs {
			uid := string(av.Key[len(fileKey(app, m.ID))+1:])
			if u, err := c.store.User(ctx, app, uid); err == nil && u.Avatar == FileURLScheme+m.ID {
				live++
			} else if err == nil || errors.Is(err, ErrNotFound) {
				dead = append(dead, RecordKey{Kind: fileAvKind, Key: av.Key})
			} else {
				return gc, err
			}
		}
		if live > 0 {
			gc.KeptInUse++
		} else if now-m.CreatedAt < grace {
			gc.KeptRecent++
		}
		if live == 0 && now-m.CreatedAt >= grace {
			ups, err := c.store.ScanRecords(ctx, fileUpKind, append(fileKey(app, m.ID), 0), nil, 0, false)
			if err != nil {
				return gc, err
			}
			for _, u := range ups {
				dead = append(dead, RecordKey{Kind: fileUpKind, Key: u.Key})
			}
			dead = append(dead, RecordKey{Kind: fileKind, Key: r.Key})
			c.filesMu.Lock()
			used, err := c.AppFileBytes(ctx, app)
			if err == nil {
				ub, _ := json.Marshal(max(used-m.Size, 0))
				err = c.write(ctx, &Batch{DelRecords: dead, Records: []Record{{Kind: fileUseKind, Key: []byte(app), Value: ub}}})
			}
			c.filesMu.Unlock()
			if err != nil {
				return gc, err
			}
			gc.StaleRefs += len(dead) - len(ups) - 1
			gc.Removed = append(gc.Removed, m)
			continue
		}
		gc.Kept = append(gc.Kept, m.ID)
		if len(dead) > 0 {
			if err := c.write(ctx, &Batch{DelRecords: dead}); err != nil {
				return gc, err
			}
			gc.StaleRefs += len(dead)
		}
	}
	return gc, nil
}

func isMedia(typ string) bool {
	return typ == "image" || typ == "voice" || typ == "video" || typ == "file"
}

package chat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// How consultations are stored, as records (records.go). Every change of
// a consultation writes its whole state in one commit; the change that
// makes it final writes, in that same commit, its billing record and the
// billing indexes, and drops it from the live set, so no ended
// consultation lacks its record.
//
//	consult       be64(id)                                → Consultation (JSON)
//	consult.live  be64(id)                                → empty: not final yet (loaded at start)
//	consult.bill  be64(id)                                → ConsultRecord (JSON)
//	consult.by    app 0 role 0 uid 0 be64(ended) be64(id) → empty; role "c" consultant, "u" customer
//	consult.free  app 0 consultant 0 customer 0 be64(id)  → be64(free seconds used)
//	consult.cfg   app 0 uid                               → ConsultantSettings (JSON)
const (
	kindConsult     = "consult"
	kindConsultLive = "consult.live"
	kindConsultBill = "consult.bill"
	kindConsultBy   = "consult.by"
	kindConsultFree = "consult.free"
	kindConsultCfg  = "consult.cfg"
)

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// consultRecords adds k's records to b.
func consultRecords(b *Batch, k *Consultation) error {
	v, err := json.Marshal(k)
	if err != nil {
		return err
	}
	id := be64(uint64(k.ID))
	b.Records = append(b.Records, Record{Kind: kindConsult, Key: id, Value: v})
	if !k.State.Final() {
		b.Records = append(b.Records, Record{Kind: kindConsultLive, Key: id})
		return nil
	}
	b.DelRecords = append(b.DelRecords, RecordKey{Kind: kindConsultLive, Key: id})
	bill := k.Bill()
	bv, err := json.Marshal(&bill)
	if err != nil {
		return err
	}
	b.Records = append(b.Records,
		Record{Kind: kindConsultBill, Key: id, Value: bv},
		Record{Kind: kindConsultBy, Key: byKey(k.App, "c", k.Consultant, k.EndedAt, k.ID)},
		Record{Kind: kindConsultBy, Key: byKey(k.App, "u", k.Customer, k.EndedAt, k.ID)})
	if bill.FreeUsed > 0 {
		b.Records = append(b.Records, Record{Kind: kindConsultFree,
			Key: append(freePrefix(k.App, k.Consultant, k.Customer), id...), Value: be64(uint64(bill.FreeUsed))})
	}
	return nil
}

func byPrefix(app, role, uid string) []byte {
	return []byte(app + "\x00" + role + "\x00" + uid + "\x00")
}

func byKey(app, role, uid string, ended int64, id SessionID) []byte {
	k := byPrefix(app, role, uid)
	k = binary.BigEndian.AppendUint64(k, uint64(ended))
	return binary.BigEndian.AppendUint64(k, uint64(id))
}

func freePrefix(app, consultant, customer string) []byte {
	return []byte(app + "\x00" + consultant + "\x00" + customer + "\x00")
}

func (c *Core) loadConsult(ctx context.Context, id SessionID) (Consultation, error) {
	var k Consultation
	v, err := c.store.Record(ctx, kindConsult, be64(uint64(id)))
	if err != nil {
		return k, err
	}
	if err := json.Unmarshal(v, &k); err != nil {
		return k, errors.New("chat: decode consultation " + itoa(uint64(id)) + ": " + err.Error())
	}
	return k, nil
}

// ConsultantSettings are a consultant's consultation settings, set by the
// host.
type ConsultantSettings struct {
	// FreeSeconds is the free allowance each customer has with this
	// consultant, across consultations: a new consultation gets what the
	// customer has not used yet, unless the host gives free_seconds.
	FreeSeconds int64 `json:"free_seconds"`
}

// SetConsultantSettings stores a consultant's settings.
func (c *Core) SetConsultantSettings(ctx context.Context, app, uid string, s ConsultantSettings) (ConsultantSettings, error) {
	if s.FreeSeconds < 0 || s.FreeSeconds > MaxConsultSeconds {
		return s, Errf(CodeBadRequest, "free_seconds must be 0 to "+strconv.Itoa(MaxConsultSeconds))
	}
	if _, err := c.User(ctx, app, uid); err != nil {
		return s, err
	}
	v, err := json.Marshal(&s)
	if err != nil {
		return s, err
	}
	return s, c.write(ctx, &Batch{Records: []Record{{Kind: kindConsultCfg, Key: []byte(app + "\x00" + uid), Value: v}}})
}

// ConsultantSettings returns a consultant's settings (zero when never set).
func (c *Core) ConsultantSettings(ctx context.Context, app, uid string) (ConsultantSettings, error) {
	var s ConsultantSettings
	if _, err := c.User(ctx, app, uid); err != nil {
		return s, err
	}
	v, err := c.store.Record(ctx, kindConsultCfg, []byte(app+"\x00"+uid))
	if errors.Is(err, ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(v, &s)
}

// freeLeft is the free allowance customer has left with consultant.
func (c *Core) freeLeft(ctx context.Context, app, consultant, customer string) (int64, error) {
	s, err := c.ConsultantSettings(ctx, app, consultant)
	if err != nil || s.FreeSeconds == 0 {
		return 0, err
	}
	recs, err := c.store.ScanRecords(ctx, kindConsultFree, freePrefix(app, consultant, customer), nil, 0, false)
	if err != nil {
		return 0, err
	}
	left := s.FreeSeconds
	for _, r := range recs {
		if len(r.Value) == 8 {
			left -= int64(binary.BigEndian.Uint64(r.Value))
		}
	}
	return max(left, 0), nil
}

// ConsultRecordQuery selects billing records: of one consultant or one
// customer, ended within [From, To] (unix ms; zero: unbounded), oldest
// first, after the cursor After (a previous page's Next).
type ConsultRecordQuery struct {
	Consultant string
	Customer   string
	From, To   int64
	After      string
	Limit      int // zero means 50; at most MaxPage
}

// ConsultRecordsPage is one page of billing records. Next, when not
// empty, is the cursor of the next page.
type ConsultRecordsPage struct {
	Records []ConsultRecord `json:"records"`
	Next    string          `json:"next,omitempty"`
}

// ConsultRecord returns one consultation's billing record, not_found
// until it is final.
func (c *Core) ConsultRecord(ctx context.Context, app string, id SessionID) (ConsultRecord, error) {
	var r ConsultRecord
	v, err := c.store.Record(ctx, kindConsultBill, be64(uint64(id)))
	if errors.Is(err, ErrNotFound) {
		if _, err := c.consultEntryFor(ctx, app, id); err != nil {
			return r, err
		}
		return r, Errf(CodeNotFound, "consultation "+itoa(uint64(id))+" has no billing record yet: it has not ended")
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, err
	}
	if r.App != app {
		return ConsultRecord{}, errNoConsult(id)
	}
	return r, nil
}

// ConsultRecords lists billing records for the host.
func (c *Core) ConsultRecords(ctx context.Context, app string, q ConsultRecordQuery) (*ConsultRecordsPage, error) {
	role, uid := "c", q.Consultant
	switch {
	case q.Consultant != "" && q.Customer != "":
		return nil, Errf(CodeBadRequest, "give consultant or customer, not both")
	case q.Customer != "":
		role, uid = "u", q.Customer
	case q.Consultant == "":
		return nil, Errf(CodeBadRequest, "missing consultant or customer: whose records")
	}
	if q.From < 0 || q.To < 0 || (q.To > 0 && q.To < q.From) {
		return nil, Errf(CodeBadRequest, "bad time range: from and to are unix ms, from <= to")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxPage)
	prefix := byPrefix(app, role, uid)
	var after []byte
	if q.From > 0 {
		// Every key of a record ended at From or later sorts after this.
		after = binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(q.From-1))
		after = append(after, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	}
	if q.After != "" {
		ended, id, ok := parseCursor(q.After)
		if !ok {
			return nil, Errf(CodeBadRequest, "bad cursor \""+clip(q.After, 40)+"\": pass a previous page's next")
		}
		if a := byKey(app, role, uid, ended, id); after == nil || string(a) > string(after) {
			after = a
		}
	}
	keys, err := c.store.ScanRecords(ctx, kindConsultBy, prefix, after, limit+1, false)
	if err != nil {
		return nil, err
	}
	page := &ConsultRecordsPage{Records: []ConsultRecord{}}
	for i, kr := range keys {
		if len(kr.Key) != len(prefix)+16 {
			continue
		}
		ended := int64(binary.BigEndian.Uint64(kr.Key[len(prefix):]))
		id := SessionID(binary.BigEndian.Uint64(kr.Key[len(prefix)+8:]))
		if q.To > 0 && ended > q.To {
			break
		}
		if i == limit && len(page.Records) > 0 {
			last := page.Records[len(page.Records)-1]
			page.Next = strconv.FormatInt(last.EndedAt, 10) + "-" + itoa(uint64(last.ID))
			break
		}
		r, err := c.ConsultRecord(ctx, app, id)
		if err != nil {
			return nil, err
		}
		page.Records = append(page.Records, r)
	}
	return page, nil
}

func parseCursor(s string) (int64, SessionID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, false
	}
	ended, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || ended < 0 {
		return 0, 0, false
	}
	return ended, SessionID(id), true
}

package chat

import (
	"context"
	"encoding/binary"
	"encoding/json"
)

// Customer service's durable state: three record kinds, JSON values.
//
//	svc.shop   app \x00 shop          → Shop
//	svc.agent  app \x00 shop \x00 uid → Agent
//	svc.conv   session id (8 bytes BE) → ServiceConversation
//
// Each change of a conversation's hands (queued, assigned, transferred,
// resolved) is one commit holding the conversation's record and the
// session's membership change together, so a crash never leaves an agent
// a member of a conversation the records say is queued, or the reverse:
// nothing is assigned twice, also across a crash while the queue drains.
// Messages write no service records.
const (
	svcKindShop  = "svc.shop"
	svcKindAgent = "svc.agent"
	svcKindConv  = "svc.conv"
)

// svcPut is one record change riding along a commit.
type svcPut struct {
	kind string
	key  []byte
	val  any // nil: delete
}

func svcShopKey(app, shop string) []byte { return []byte(app + "\x00" + shop) }

func svcAgentKey(app, shop, uid string) []byte { return []byte(app + "\x00" + shop + "\x00" + uid) }

func svcConvKey(id SessionID) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// svcCommit writes b (membership, sessions) and the record changes in one
// commit through the journal: a "direct" batch in storage.Bolt, never
// per message.
func (c *Core) svcCommit(ctx context.Context, b *Batch, puts []svcPut) error {
	if b == nil {
		b = &Batch{}
	}
	for _, p := range puts {
		if p.val == nil {
			b.DelRecords = append(b.DelRecords, RecordKey{Kind: p.kind, Key: p.key})
			continue
		}
		v, err := json.Marshal(p.val)
		if err != nil {
			return err
		}
		b.Records = append(b.Records, Record{Kind: p.kind, Key: p.key, Value: v})
	}
	if b.Empty() {
		return nil
	}
	return c.write(ctx, c.fenced(b)) // owner.go
}

// svcScan returns the values of every record of kind, ascending by key.
func (c *Core) svcScan(ctx context.Context, kind string) ([][]byte, error) {
	rs, err := c.store.ScanRecords(ctx, kind, nil, nil, 0, false)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(rs))
	for i := range rs {
		out[i] = rs[i].Value
	}
	return out, nil
}

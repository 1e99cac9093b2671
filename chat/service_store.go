package chat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"sort"
	"sync"
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

// svcRecords is where the records live until the store's generic records
// (Batch.Records, Store.ScanRecords) are available to this package: a
// process-wide table keyed by the store, so a core built again on the same
// store (a restart in tests) finds them. The commit below is the single
// seam: it becomes "append the records to the batch" once the store has
// them.
var svcRecords = struct {
	mu sync.Mutex
	m  map[Store]map[string][]byte // store → kind \x01 key → value
}{m: make(map[Store]map[string][]byte)}

// svcCommit writes b (membership, sessions) and the record changes in one
// commit through the journal.
func (c *Core) svcCommit(ctx context.Context, b *Batch, puts []svcPut) error {
	enc := make([][]byte, len(puts))
	for i, p := range puts {
		if p.val == nil {
			continue
		}
		v, err := json.Marshal(p.val)
		if err != nil {
			return err
		}
		enc[i] = v
	}
	if b != nil && !b.Empty() {
		if err := c.write(ctx, b); err != nil {
			return err
		}
	}
	svcRecords.mu.Lock()
	defer svcRecords.mu.Unlock()
	t := svcRecords.m[c.store]
	if t == nil {
		t = make(map[string][]byte)
		svcRecords.m[c.store] = t
	}
	for i, p := range puts {
		k := p.kind + "\x01" + string(p.key)
		if p.val == nil {
			delete(t, k)
		} else {
			t[k] = enc[i]
		}
	}
	return nil
}

// svcScan returns every record of kind, ascending by key.
func (c *Core) svcScan(_ context.Context, kind string) ([][]byte, error) {
	svcRecords.mu.Lock()
	defer svcRecords.mu.Unlock()
	t := svcRecords.m[c.store]
	keys := make([]string, 0, len(t))
	for k := range t {
		if len(k) > len(kind) && k[:len(kind)+1] == kind+"\x01" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = t[k]
	}
	return out, nil
}

package chat

import "context"

// The contacts domain's calls on the Store's records (RECORDS: store.go).

func (c *Core) record(ctx context.Context, kind string, key []byte) ([]byte, error) {
	return c.store.Record(ctx, kind, key)
}

func (c *Core) scanRecords(ctx context.Context, kind string, prefix, after []byte, limit int, reverse bool) ([]Record, error) {
	return c.store.ScanRecords(ctx, kind, prefix, after, limit, reverse)
}

// writeRecords commits puts, then dels, in one durable write.
func (c *Core) writeRecords(ctx context.Context, puts []Record, dels []RecordKey) error {
	return c.write(ctx, &Batch{Records: puts, DelRecords: dels})
}

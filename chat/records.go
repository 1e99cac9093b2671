package chat

import (
	"bytes"
	"errors"
	"strconv"
)

// Records are the durable state of the core's domains that are not
// messages, sessions or users: customer-service conversations and queues,
// consultations and their bills, contacts, moderation. A domain keeps
// typed structs in this package and encodes them with its own codec; the
// Store keeps each value as opaque bytes under (Kind, Key), ordered by key
// within a kind, so that one Store interface (and one conformance suite)
// serves every domain, and a second Store (PostgreSQL) ports them all with
// one table.
//
// In storage.Bolt records ride the write-ahead log with messages: a group
// commit holding records costs one log append and sync, and a checkpoint
// writes them into bbolt later (storage/doc.go). A record per message is
// affordable (a webhook outbox event, BenchmarkApplyRecords), but each
// one adds its bytes to the log and the checkpoint, so keep them small.

// Record is one durable value of a domain.
type Record struct {
	// Kind names the domain's key space: 1–32 bytes of [a-z0-9_.], such
	// as "svc.conv". ValidKind checks it.
	Kind string
	// Key orders records within a kind, bytewise: encode numbers
	// big-endian so they sort. 1–512 bytes.
	Key []byte
	// Value is the domain's encoding; it may be empty.
	Value []byte
}

// RecordKey names a record to delete.
type RecordKey struct {
	Kind string
	Key  []byte
}

// MaxRecordKey is the longest record key a Store accepts.
const MaxRecordKey = 512

// ValidKind reports whether kind may name a record kind.
func ValidKind(kind string) bool {
	if len(kind) == 0 || len(kind) > 32 {
		return false
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ValidRecordKey reports whether key may be a record key.
func ValidRecordKey(key []byte) bool { return len(key) > 0 && len(key) <= MaxRecordKey }

// CheckRecord is ValidKind and ValidRecordKey as the error a Store returns
// for a bad record (store names it: "storage", "pgstore" …).
func CheckRecord(store, kind string, key []byte) error {
	if !ValidKind(kind) {
		return errors.New(store + ": invalid record kind " + strconv.Quote(kind))
	}
	if !ValidRecordKey(key) {
		return errors.New(store + ": record " + kind + ": key of " + strconv.Itoa(len(key)) + " bytes (1 to " + strconv.Itoa(MaxRecordKey) + ")")
	}
	return nil
}

// InRecordRange reports whether key belongs to a scan with prefix, after
// and direction: it starts with prefix and sorts after `after` (ascending)
// or before it (reverse); a nil after admits every key. Stores use it so
// that every implementation agrees on the edges.
func InRecordRange(key, prefix, after []byte, reverse bool) bool {
	if !bytes.HasPrefix(key, prefix) {
		return false
	}
	if after == nil {
		return true
	}
	if reverse {
		return bytes.Compare(key, after) < 0
	}
	return bytes.Compare(key, after) > 0
}

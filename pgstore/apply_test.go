package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"chatd/chat"
	"chatd/internal/testpg"
)

// TestApplyErrors: PostgreSQL's disk_full becomes chat.ErrDiskFull (the
// core's "disk full"); a member of a missing session chat.ErrNotFound;
// other errors pass through, wrapped.
func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		is   error
	}{
		{name: "disk full", err: &pgconn.PgError{Code: "53100", Message: "could not extend file"}, is: chat.ErrDiskFull},
		{name: "missing session", err: &pgconn.PgError{Code: "23503", TableName: "members"}, is: chat.ErrNotFound},
		{name: "pair taken", err: &pgconn.PgError{Code: "23505", ConstraintName: "sessions_pair"}, is: ErrPairTaken},
		{name: "other", err: fmt.Errorf("batch: %w", &pgconn.PgError{Code: "57P01"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := applyError(tc.err)
			if tc.is != nil && !errors.Is(got, tc.is) {
				t.Fatalf("applyError = %v, want one wrapping %v", got, tc.is)
			}
			var pe *pgconn.PgError
			if tc.is == nil && (!errors.As(got, &pe) || !strings.HasPrefix(got.Error(), "pgstore: apply")) {
				t.Fatalf("applyError = %v, want the PostgreSQL error wrapped", got)
			}
		})
	}
	if applyError(nil) != nil {
		t.Fatal("applyError(nil) != nil")
	}
}

// TestApplyRefusesHugeSeqs: seqs are bigint; a seq past 2^63 fails the
// whole batch before anything is sent.
func TestApplyRefusesHugeSeqs(t *testing.T) {
	ctx := context.Background()
	s, err := OpenShared(ctx, testpg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Apply(ctx, &chat.Batch{
		Apps:     []chat.App{{ID: "a"}},
		Messages: []chat.Message{{Session: 1, Seq: 1 << 63}},
	})
	if err == nil || !strings.Contains(err.Error(), "past 2^63") {
		t.Fatalf("Apply with seq 2^63: %v", err)
	}
	if _, err := s.App(ctx, "a"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("app of the refused batch: %v, want ErrNotFound", err)
	}
}

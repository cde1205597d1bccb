package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookd/hookd/store"
)

// Commit applies the writes in one transaction, each under its own
// savepoint, and returns one result per write, in order: nil, the
// sentinel [store.ErrDuplicate] or [store.ErrFenced], an error wrapping
// [ErrInvalidArgument] for a write PostgreSQL can never store, or an error
// wrapping [store.ErrUnavailable]; and [store.ErrSkipped] for a write
// with AfterPrevious whose previous write did not succeed, which is
// never sent.
//
// A write whose dedup key another event holds is recorded as an event with
// status duplicate (and answered ErrDuplicate); its AfterPrevious
// followers are skipped all the same. When the transaction fails as a
// whole (connection lost, context canceled, commit failed), every write
// except the invalid ones and their skipped followers gets ErrUnavailable,
// including those that had met a duplicate or a fence inside it, or had
// been skipped after one: their answer may have depended on an earlier
// write of the same batch, which did not commit either, and a duplicate's
// record was lost with the transaction. Retrying them gives the true
// answer.
//
// When nothing conflicts, the whole batch is one pipelined round trip.
// Each savepoint that writes takes a subtransaction ID and PostgreSQL
// caches only 64 of them per transaction, so keep batches to about 64
// writes: beyond that, every other session's snapshots get slower.
func (s *Store) Commit(ctx context.Context, writes []store.Write) []error {
	errs := store.ValidateWrites(writes)
	if err := s.commit(ctx, writes, errs); err != nil {
		store.FailWrites(writes, errs, err)
	}
	return errs
}

// skipFollowers sets the result of each write chained (by AfterPrevious,
// transitively) to writes[failed], which did not succeed, to
// [store.ErrSkipped], so that it is never sent. A follower that already
// has a result (invalid) keeps it, and the chain goes on through it.
func skipFollowers(writes []store.Write, errs []error, failed int) {
	for i := failed + 1; i < len(writes) && writes[i].AfterPrevious; i++ {
		if errs[i] == nil {
			errs[i] = store.ErrSkipped
		}
	}
}

// RecordEvent stores an event outside any customer's state: it is Commit
// of a write with no state, notifications or routes. It returns
// [store.ErrDuplicate] when (source, event ID) or the event's dedup key is
// already stored; in the latter case the event is recorded with status
// duplicate.
func (s *Store) RecordEvent(ctx context.Context, e store.Event) error {
	return s.Commit(ctx, []store.Write{{Event: e}})[0]
}

// stepKind says what a queued statement of a commit pipeline does.
type stepKind int

const (
	stepBegin     stepKind = iota
	stepSavepoint          // SAVEPOINT before a write
	stepWrite              // the write's one statement (sqlWrite*)
	stepDuplicate          // record a dedup-key duplicate (sqlWriteDuplicate)
	stepRelease            // RELEASE SAVEPOINT after a write
	stepNotify             // pg_notify for other members' subscribers
	stepCommit
)

// step is one queued statement and the index of the write it serves.
type step struct {
	kind  stepKind
	write int
}

// commit runs the transaction, setting errs[i] for each write that meets a
// duplicate, a fence or invalid data. It returns an error when the
// transaction as a whole failed; then nothing was committed (or, if the
// connection broke during COMMIT, it is not known whether it was). It
// also sets [store.ErrSkipped] for the AfterPrevious followers of each
// write that fails.
//
// The writes go out in one pipeline: BEGIN, then SAVEPOINT, the write's
// statement and RELEASE for each write, then COMMIT. PostgreSQL skips the
// rest of a pipeline after an error, so when a write fails, commit rolls
// back to its savepoint, records the outcome, and sends a new pipeline
// that resumes after that write, leaving out its skipped followers. (They
// were queued behind the failed write in the pipeline it cut short, so
// PostgreSQL never ran them.)
func (s *Store) commit(ctx context.Context, writes []store.Write, errs []error) (err error) {
	if !slices.Contains(errs, nil) {
		return nil // nothing to write
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left inside a transaction is destroyed on release.
	defer pc.Release()
	conn := pc.Conn()
	defer func() {
		if err != nil && !conn.IsClosed() {
			_, _ = conn.Exec(ctx, "ROLLBACK")
		}
	}()

	begun := false
	next := 0         // the first write not yet sent
	resume := -1      // a write rolled back to its savepoint, still open
	dupFirst := false // record resume as a dedup-key duplicate first
	for {
		b := &pgx.Batch{}
		var steps []step
		queue := func(kind stepKind, write int, sql string, args ...any) {
			b.Queue(sql, args...)
			steps = append(steps, step{kind, write})
		}
		if !begun {
			queue(stepBegin, -1, "BEGIN")
			queue(stepBegin, -1, sqlGenericPlans)
		}
		if resume >= 0 {
			if dupFirst {
				queue(stepDuplicate, resume, sqlWriteDuplicate, duplicateArgs(writes[resume].Event)...)
			}
			queue(stepRelease, resume, "RELEASE SAVEPOINT w")
		}
		for i := next; i < len(writes); i++ {
			if errs[i] != nil {
				continue
			}
			sql, args := writeStatement(writes[i])
			queue(stepSavepoint, i, "SAVEPOINT w")
			if writes[i].Replace {
				queue(stepWrite, i, sqlDeleteIgnored, writes[i].Event.Source, writes[i].Event.EventID)
			}
			queue(stepWrite, i, sql, args...)
			for _, rel := range writes[i].Released {
				queue(stepWrite, i, sqlReleaseParked, rel.Source, rel.EventID, rel.Version, rel.Reason)
			}
			queue(stepRelease, i, "RELEASE SAVEPOINT w")
		}
		if writesNotifications(writes, errs) {
			// Delivered at commit, to every member's Listen.
			queue(stepNotify, -1, sqlNotifyOutbox)
		}
		queue(stepCommit, -1, "COMMIT")

		failed, err := runPipeline(ctx, conn, b)
		if failed < 0 {
			return nil
		}
		begun = true
		st := steps[failed]
		if st.kind != stepWrite && st.kind != stepDuplicate {
			return err
		}
		outcome, dedup := writeOutcome(writes[st.write].Event.EventID, err)
		if outcome == nil {
			return err // not the write's fault: fail the transaction
		}
		if _, err := conn.Exec(ctx, "ROLLBACK TO SAVEPOINT w"); err != nil {
			return err
		}
		errs[st.write] = outcome
		skipFollowers(writes, errs, st.write)
		resume, next = st.write, st.write+1
		// A dedup-key duplicate is recorded once; if recording it fails
		// too, the write keeps that failure's outcome.
		dupFirst = st.kind == stepWrite && dedup
	}
}

// writesNotifications reports whether a write that has succeeded so far
// or is still to be sent (nil result) writes notifications. It looks at
// the writes already run in the transaction too: a pipeline that a
// failed write cut short never reached its pg_notify, so the one that
// resumes after it must send it for them.
func writesNotifications(writes []store.Write, errs []error) bool {
	for i, w := range writes {
		if errs[i] == nil && len(w.Notifications) > 0 {
			return true
		}
	}
	return false
}

// runPipeline sends b and reads its results. It returns -1 if every
// statement succeeded, else the index of the first that failed and its
// error; PostgreSQL skipped the ones after it.
func runPipeline(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) (int, error) {
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	for i := range b.Len() {
		tag, err := br.Exec()
		if err != nil {
			return i, err
		}
		if i == b.Len()-1 && tag.String() != "COMMIT" {
			// COMMIT of a failed transaction answers ROLLBACK.
			return i, fmt.Errorf("transaction rolled back (%s)", tag)
		}
	}
	if err := br.Close(); err != nil {
		return b.Len() - 1, err
	}
	return -1, nil
}

// writeOutcome translates the error of a write's statement into the
// write's result. It returns nil for an error that is not the write's own
// (a lost connection, a canceled context, a deadlock), which fails the
// whole transaction. dedup reports a dedup-key violation, which the
// caller records as a duplicate event.
func writeOutcome(eventID string, err error) (outcome error, dedup bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil, false
	}
	switch {
	case pgErr.Code == "23505" && pgErr.ConstraintName == constraintEventsPK:
		return store.ErrDuplicate, false
	case pgErr.Code == "23505" && pgErr.ConstraintName == constraintEventsDedupKey:
		return store.ErrDuplicate, true
	case pgErr.Code == sqlCodeFenced:
		return store.ErrFenced, false
	case strings.HasPrefix(pgErr.Code, "22"), strings.HasPrefix(pgErr.Code, "23"):
		// Data exceptions and other integrity violations follow from the
		// write's values: retrying cannot help, and failing the batch
		// would fail every other write with it, again and again.
		return fmt.Errorf("commit event %s: %w: %w", eventID, ErrInvalidArgument, err), false
	}
	return nil, false
}

// writeStatement returns the statement and arguments for one write, in
// the order writeSQL numbers them.
func writeStatement(w store.Write) (string, []any) {
	e := w.Event
	sh := writeShape{notes: countShape(len(w.Notifications)), routes: countShape(len(w.Routes))}
	args := make([]any, 0, 14+2+6+1)
	args = append(args,
		e.Source, e.EventID, e.Type, e.CustomerID, string(e.Status), e.Reason, e.Routing,
		e.Created, e.APIVersion, e.ObjectID, e.DedupKey, e.Version, payload(e.Payload), e.Account)
	switch {
	case w.State == nil:
		sh.kind = writeEventOnly
	case w.ReadVersion == 0:
		sh.kind = writeCreate
		args = append(args, w.State)
	default:
		sh.kind = writeUpdate
		args = append(args, w.State, w.ReadVersion)
	}
	switch sh.notes {
	case 1:
		no := w.Notifications[0]
		args = append(args, cmp.Or(no.CustomerID, e.CustomerID), no.Kind, cmp.Or(no.EventID, e.EventID),
			no.OccurredAt, no.Customer, no.Version)
	case 2:
		n := len(w.Notifications)
		var (
			customerIDs = make([]string, n)
			kinds       = make([]string, n)
			eventIDs    = make([]string, n)
			occurredAt  = make([]time.Time, n)
			customers   = make([][]byte, n)
			versions    = make([]int64, n)
		)
		for i, no := range w.Notifications {
			customerIDs[i] = cmp.Or(no.CustomerID, e.CustomerID)
			kinds[i] = no.Kind
			eventIDs[i] = cmp.Or(no.EventID, e.EventID)
			occurredAt[i] = no.OccurredAt
			customers[i] = no.Customer
			versions[i] = no.Version
		}
		args = append(args, customerIDs, kinds, eventIDs, occurredAt, customers, versions)
	}
	switch sh.routes {
	case 1:
		args = append(args, w.Routes[0])
	case 2:
		args = append(args, w.Routes)
	}
	return writeSQLs[sh.kind][sh.notes][sh.routes], args
}

// duplicateArgs returns the arguments of sqlWriteDuplicate.
func duplicateArgs(e store.Event) []any {
	return []any{
		e.Source, e.EventID, e.Type, e.CustomerID, e.Routing, e.Created,
		e.APIVersion, e.ObjectID, e.DedupKey, payload(e.Payload), e.Account,
	}
}

// payload returns p, or an empty payload for nil (the column is NOT NULL).
func payload(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}

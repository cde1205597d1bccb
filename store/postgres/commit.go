package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookd/hookd/store"
)

// Commit applies the writes in one transaction and returns one result per write, in order: nil, the
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
// When nothing conflicts, the whole batch is one pipelined round trip with
// no savepoints (commitOptimistic). When a write fails, that transaction
// is rolled back and the batch committed again with each write under its
// own savepoint. Each savepoint that writes takes a subtransaction ID and
// PostgreSQL caches only 64 of them per transaction, so keep batches to
// about 64 writes: beyond that, every other session's snapshots get
// slower.
//
// One write never fails the others for a reason of its own. A statement
// error is pinned on the write whose savepoint it happened under: data
// PostgreSQL can never store (see classify) makes that write invalid, any
// other error the server reports makes it unavailable alone, and the
// others go on. When the transaction fails for a reason no write can be
// blamed for and that is not known to be transient (the commit itself
// refused, say), Commit splits the writes in two at a chain boundary and
// commits each half on its own, down to single chains, so that the
// innocent writes commit and the guilty one gets its own answer. A chain
// (AfterPrevious) is never split across transactions. A transient failure
// (connection lost, server restarting, lock timeout) is never split: every
// write affected gets ErrUnavailable, as above.
func (s *Store) Commit(ctx context.Context, writes []store.Write) []error {
	errs := store.ValidateWrites(writes)
	s.commitIsolated(ctx, writes, errs)
	return errs
}

// commitIsolated commits writes (errs holds their results so far) and, if
// the transaction fails for a reason that is neither transient nor pinned
// on one write, splits them in two at a chain boundary and commits each
// half by itself, recursively. A transaction refused by the server
// committed nothing, so the halves commit nothing twice.
func (s *Store) commitIsolated(ctx context.Context, writes []store.Write, errs []error) {
	before := slices.Clone(errs)
	err := s.commit(ctx, writes, errs)
	if err == nil {
		return
	}
	f := classify(err)
	if f == faultTransient || ctx.Err() != nil {
		store.FailWrites(writes, errs, err)
		return
	}
	// Back to the results before the attempt, except that a write found
	// invalid stays invalid: its data is what it is.
	for i := range errs {
		if !errors.Is(errs[i], ErrInvalidArgument) {
			errs[i] = before[i]
		}
		if errs[i] == nil && store.ChainBroken(writes, errs, i) {
			errs[i] = store.ErrSkipped
		}
	}
	mid := splitPoint(writes, errs)
	if mid < 0 {
		// One chain alone: the failure is its own. Permanent only when
		// it follows from the data of its one write; anything else is
		// retried by the caller.
		if live := liveWrites(errs); f == faultData && len(live) == 1 {
			errs[live[0]] = fmt.Errorf("commit event %s: %w: %w", writes[live[0]].Event.EventID, ErrInvalidArgument, err)
			skipFollowers(writes, errs, live[0])
			return
		}
		store.FailWrites(writes, errs, err)
		return
	}
	s.log.Warn("commit failed for a reason no single write can be blamed for; splitting the batch",
		"writes", len(writes), "err", err)
	s.commitIsolated(ctx, writes[:mid], errs[:mid])
	s.commitIsolated(ctx, writes[mid:], errs[mid:])
}

// splitPoint returns the index of the chain start (a write without
// AfterPrevious) that divides the writes still to be sent (nil results)
// most evenly with some on either side, or -1 when they are all one chain.
func splitPoint(writes []store.Write, errs []error) int {
	live := liveWrites(errs)
	best, bestDist := -1, len(writes)+1
	for k, i := range live {
		if k == 0 || writes[i].AfterPrevious {
			continue
		}
		if d := abs(len(live) - 2*k); d < bestDist {
			best, bestDist = i, d
		}
	}
	return best
}

// liveWrites returns the indexes of the writes still to be sent.
func liveWrites(errs []error) []int {
	var live []int
	for i, err := range errs {
		if err == nil {
			live = append(live, i)
		}
	}
	return live
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
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
	stepSetBased           // a statement of a set-based batch (setbased.go)
	stepCommit
)

// errRolledBack is the error of a COMMIT that PostgreSQL answered with
// ROLLBACK: nothing was committed, for a reason it did not report.
var errRolledBack = errors.New("transaction rolled back")

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

	if s.fastCommits.Load() <= 0 {
		s.fastCommits.Add(1) // after a failed optimistic attempt: count back up
	} else {
		done, err := s.commitOptimistic(ctx, conn, writes, errs)
		if done || err != nil {
			return err
		}
		// A write failed: nothing was committed. Start over with a
		// savepoint per write, which tells the failed write from the
		// others, and stay with savepoints for the next few commits.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return err
		}
		s.fastCommits.Store(1 - optimisticBackoff)
	}

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
			return err // transient: fail the transaction
		}
		if _, err := conn.Exec(ctx, "ROLLBACK TO SAVEPOINT w"); err != nil {
			return err
		}
		errs[st.write] = outcome
		if errors.Is(outcome, store.ErrUnavailable) {
			// The chain is retried as a whole, as after a failed
			// transaction (see store.Store.Commit).
			for i := st.write + 1; i < len(writes) && writes[i].AfterPrevious; i++ {
				if errs[i] == nil {
					errs[i] = outcome
				}
			}
		} else {
			skipFollowers(writes, errs, st.write)
		}
		resume, next = st.write, st.write+1
		// A dedup-key duplicate is recorded once; if recording it fails
		// too, the write keeps that failure's outcome.
		dupFirst = st.kind == stepWrite && dedup
	}
}

// optimisticBackoff is how many commits after a failed optimistic attempt
// take savepoints from the start, so that a stream of conflicting writes
// (a replay, or duplicates by the thousand) does not run every batch
// twice.
const optimisticBackoff = 16

// commitOptimistic runs the transaction with no savepoints: BEGIN, every
// write's statements, COMMIT, in one pipeline. Most batches have no write
// that fails (duplicates by event ID are caught by the actors before they
// commit, fences fail only when two writers race for one customer), and a
// savepoint per write costs PostgreSQL two more statements and a
// subtransaction (its own XID, a pg_subtrans entry) each.
//
// done reports that every write committed. When a write's statement
// fails, PostgreSQL aborts the transaction and skips the rest, so nothing
// was committed: commitOptimistic returns done false and a nil error for
// a failure that belongs to one write (a duplicate, a fence, data it
// cannot store, an unexpected error of its own), and the caller rolls
// back and commits again with savepoints, which pins the failure on its
// write. A failure of the transaction as a whole (a lost connection, a
// refused COMMIT) is returned as err, as from commit.
func (s *Store) commitOptimistic(ctx context.Context, conn *pgx.Conn, writes []store.Write, errs []error) (done bool, err error) {
	b := &pgx.Batch{}
	var steps []step
	queue := func(kind stepKind, write int, sql string, args ...any) {
		b.Queue(sql, args...)
		steps = append(steps, step{kind, write})
	}
	queue(stepBegin, -1, "BEGIN")
	queue(stepBegin, -1, sqlGenericPlans)
	if n := b.Len(); s.setBased && queueSetBased(b, writes, errs) {
		for range b.Len() - n {
			steps = append(steps, step{stepSetBased, -1})
		}
	} else {
		s.queueWrites(queue, writes, errs)
	}
	if writesNotifications(writes, errs) {
		queue(stepNotify, -1, sqlNotifyOutbox)
	}
	queue(stepCommit, -1, "COMMIT")

	failed, err := runPipeline(ctx, conn, b)
	if failed < 0 {
		return true, nil
	}
	st := steps[failed]
	if st.kind != stepWrite && st.kind != stepSetBased {
		return false, err
	}
	id := "(a set-based write)"
	if st.write >= 0 {
		id = writes[st.write].Event.EventID
	}
	if outcome, _ := writeOutcome(id, err); outcome == nil {
		return false, err // transient: fail the transaction
	}
	return false, nil
}

// queueWrites queues each live write's own statements, in order.
func (s *Store) queueWrites(queue func(kind stepKind, write int, sql string, args ...any), writes []store.Write, errs []error) {
	for i := range writes {
		if errs[i] != nil {
			continue
		}
		if writes[i].Replace {
			queue(stepWrite, i, sqlDeleteIgnored, writes[i].Event.Source, writes[i].Event.EventID)
		}
		sql, args := writeStatement(writes[i])
		queue(stepWrite, i, sql, args...)
		for _, rel := range writes[i].Released {
			queue(stepWrite, i, sqlReleaseParked, rel.Source, rel.EventID, rel.Version, rel.Reason)
		}
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
			return i, fmt.Errorf("%w (%s)", errRolledBack, tag)
		}
	}
	if err := br.Close(); err != nil {
		return b.Len() - 1, err
	}
	return -1, nil
}

// writeOutcome translates the error of a write's statement into the
// write's result. It returns nil for a transient error (a lost
// connection, a canceled context, a deadlock, a lock timeout), which
// fails the whole transaction. Any other error the server reports
// happened under the write's savepoint and is the write's alone: data it
// can never store (classify) makes it invalid, and failing the batch
// would fail every other write with it, again and again; an unexpected
// error makes it unavailable, so that it is retried, without the others.
// dedup reports a dedup-key violation, which the caller records as a
// duplicate event.
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
	}
	switch classify(err) {
	case faultData:
		return fmt.Errorf("commit event %s: %w: %w", eventID, ErrInvalidArgument, err), false
	case faultUnknown:
		return fmt.Errorf("commit event %s: %w: %w", eventID, store.ErrUnavailable, err), false
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
		var notes noteColumns
		for _, no := range w.Notifications {
			notes.add(no, e)
		}
		args = append(args, notes.args()...)
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

package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/store"
)

// commitRequest is one Commit call waiting for the writer.
type commitRequest struct {
	ctx    context.Context
	writes []store.Write
	errs   []error       // one per write; set by whoever commits the request
	done   chan struct{} // closed once errs are final
}

// Commit applies the writes in one transaction, each under its own
// savepoint, and returns one result per write, in order: nil, the
// sentinel [store.ErrDuplicate] or [store.ErrFenced], an error wrapping
// [store.ErrInvalidArgument] for a write that can never be stored, or an
// error wrapping [store.ErrUnavailable]; and [store.ErrSkipped] for a
// write with AfterPrevious whose previous write did not succeed, which is
// not attempted. A nil result means the write is durable: the transaction
// was fsynced.
//
// A write whose dedup key another event holds is recorded as an event with
// status duplicate (and answered ErrDuplicate); its AfterPrevious
// followers are skipped all the same. When the transaction fails as a
// whole (I/O error, the store closed), every write except the invalid
// ones and their skipped followers gets ErrUnavailable, including those
// that had met a duplicate or a fence inside it, or had been skipped
// after one: their answer may have depended on an earlier write of the
// same transaction, which did not commit either. A write whose own
// statement fails with an error SQLite does not say is transient is
// rolled back to its savepoint and answered ErrUnavailable alone; a
// transaction that fails for a reason no savepoint pins on a write (a
// refused COMMIT) is split by call, and each part committed on its own
// (see commitIsolated).
//
// Concurrent calls share transactions (group commit): a call waits while
// another transaction commits, and the first waiting call to get the
// writer commits its own writes and those of every call queued behind it,
// each write still under its own savepoint. Each call's writes stay a
// slice of their own, so an AfterPrevious chain never reaches into
// another call's writes. A call whose ctx is done before its writes are
// taken up fails with ErrUnavailable and writes nothing; once taken up,
// its writes are committed or not regardless of ctx, and the call waits
// for the outcome (one transaction, bounded by the busy timeout).
func (s *Store) Commit(ctx context.Context, writes []store.Write) []error {
	errs := store.ValidateWrites(writes)
	if !slices.Contains(errs, nil) {
		return errs // nothing to write
	}
	if err := ctx.Err(); err != nil {
		store.FailWrites(writes, errs, err)
		return errs
	}
	req := &commitRequest{ctx: ctx, writes: writes, errs: errs, done: make(chan struct{})}
	s.qmu.Lock()
	s.queue = append(s.queue, req)
	s.qmu.Unlock()

	select {
	case <-req.done:
		// Another call committed it.
	case s.writer <- struct{}{}:
		// Every call that owned the writer before finished the requests
		// it took; if req is not done, it is still queued.
		select {
		case <-req.done:
		default:
			s.commitQueued()
		}
		s.releaseWriter()
	case <-ctx.Done():
		if s.dequeue(req) {
			store.FailWrites(writes, errs, ctx.Err())
			return errs
		}
		<-req.done // taken up: wait for the transaction's outcome
	}
	return errs
}

// RecordEvent stores an event outside any customer's state: it is Commit
// of a write with no state, notifications or routes. It returns
// [store.ErrDuplicate] when (source, event ID) or the event's dedup key is
// already stored; in the latter case the event is recorded with status
// duplicate.
func (s *Store) RecordEvent(ctx context.Context, e store.Event) error {
	return s.Commit(ctx, []store.Write{{Event: e}})[0]
}

// dequeue removes req from the queue and reports whether it was there.
func (s *Store) dequeue(req *commitRequest) bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	i := slices.Index(s.queue, req)
	if i < 0 {
		return false
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	return true
}

// commitQueued takes every queued request, commits their writes in one
// transaction and completes them. The caller owns the writer.
func (s *Store) commitQueued() {
	s.qmu.Lock()
	reqs := s.queue
	s.queue = nil
	s.qmu.Unlock()

	var live []*commitRequest
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			store.FailWrites(r.writes, r.errs, err)
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if s.closed {
		for _, r := range live {
			store.FailWrites(r.writes, r.errs, errClosed)
		}
	} else if tracing.Enabled() {
		s.commitTraced(live)
	} else {
		s.commitIsolated(live)
	}
	for _, r := range live {
		close(r.done)
	}
}

// commitIsolated commits the requests' writes in one transaction and, if
// it fails for a reason that is neither transient nor pinned on one write
// (see transient), commits each half of the requests by itself,
// recursively, so that the others commit without the request that causes
// the failure. That request, alone, gets ErrUnavailable (its caller
// retries): only an error pinned on one write's own statement is
// permanent. A transaction that failed committed nothing, so nothing is
// committed twice; a request's writes (a chain) are never split. The
// caller owns the writer.
func (s *Store) commitIsolated(reqs []*commitRequest) {
	before := make([][]error, len(reqs))
	for i, r := range reqs {
		before[i] = slices.Clone(r.errs)
	}
	err := s.commitTx(reqs)
	if err == nil {
		return
	}
	if len(reqs) == 1 || transient(err) {
		for _, r := range reqs {
			store.FailWrites(r.writes, r.errs, err)
		}
		return
	}
	// Back to the results before the attempt, except that a write found
	// invalid stays invalid.
	for i, r := range reqs {
		for j := range r.errs {
			if !errors.Is(r.errs[j], store.ErrInvalidArgument) {
				r.errs[j] = before[i][j]
			}
		}
	}
	s.log.Warn("commit failed for a reason no single write can be blamed for; splitting the batch",
		"requests", len(reqs), "err", err)
	h := len(reqs) / 2
	s.commitIsolated(reqs[:h])
	s.commitIsolated(reqs[h:])
}

// transient reports whether err, which failed a transaction, may pass by
// itself: the store closed, a context done, a busy or locked database,
// I/O, a full disk, memory. Splitting a batch that failed for such a
// reason only multiplies the attempts.
func transient(err error) bool {
	var se *sqlitedriver.Error
	if !errors.As(err, &se) {
		return true // not SQLite's answer: the store closed, a context, a broken connection
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
		sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// commitTx runs one transaction for the requests' writes, setting the
// result of each write that meets a duplicate, a fence or invalid data,
// and of each that is skipped after such a write (AfterPrevious). It
// returns an error when the transaction as a whole failed; then nothing
// was committed. The caller owns the writer.
//
// The transaction does not watch any caller's context: it serves many
// callers, each of which waits for it to end.
func (s *Store) commitTx(reqs []*commitRequest) (err error) {
	ctx := context.WithoutCancel(reqs[0].ctx)
	if s.stmts == nil {
		if s.stmts, err = prepareStatements(ctx, s.wdb); err != nil {
			return err
		}
	}
	tx, err := s.wdb.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// SQLite may have rolled back already (after an I/O error,
			// say); then this fails harmlessly.
			_ = tx.Rollback()
		}
	}()
	st := s.stmts.bind(ctx, tx)
	// Like PostgreSQL's now(): one timestamp for the whole transaction.
	now := micros(time.Now())
	for _, r := range reqs {
		// Each request's writes are a slice of their own: a chain
		// (AfterPrevious) never reaches into the request before.
		for i, w := range r.writes {
			if r.errs[i] != nil {
				continue
			}
			if store.ChainBroken(r.writes, r.errs, i) {
				r.errs[i] = store.ErrSkipped
				if errors.Is(r.errs[i-1], store.ErrUnavailable) {
					// The chain is retried as a whole (store.Store.Commit).
					r.errs[i] = r.errs[i-1]
				}
				continue
			}
			if r.errs[i], err = st.apply(ctx, w, now); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		// A COMMIT that SQLite refuses (a deferred constraint) leaves
		// the transaction open on the one writer connection, and
		// database/sql no longer lets tx roll it back.
		_, _ = s.wdb.ExecContext(ctx, "ROLLBACK")
		return err
	}
	return nil
}

// apply runs one write under a savepoint. It returns the write's outcome
// (nil, ErrDuplicate, ErrFenced or invalid data), or an error that fails
// the transaction.
func (st *txStatements) apply(ctx context.Context, w store.Write, now int64) (outcome, err error) {
	if _, err := st.savepoint.ExecContext(ctx); err != nil {
		return nil, err
	}
	outcome, dedup, err := st.write(ctx, w, now)
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		if _, err := st.rollbackSavepoint.ExecContext(ctx); err != nil {
			return nil, err
		}
		if dedup {
			// Record the event as a duplicate of the one holding its key.
			// If that fails too, the write keeps that failure's outcome.
			e := w.Event
			_, dupErr := st.insertDuplicate.ExecContext(ctx,
				e.Source, e.EventID, e.Type, e.CustomerID, e.Routing, micros(e.Created), now,
				e.APIVersion, e.ObjectID, e.DedupKey, e.Payload, e.Account)
			if dupErr != nil {
				if outcome, _ = writeOutcome(e.EventID, dupErr); outcome == nil {
					return nil, dupErr
				}
				if _, err := st.rollbackSavepoint.ExecContext(ctx); err != nil {
					return nil, err
				}
			}
		}
	}
	if _, err := st.releaseSavepoint.ExecContext(ctx); err != nil {
		return nil, err
	}
	return outcome, nil
}

// write runs the statements of one write: the event row, the fenced state
// write, the outbox rows, the release of parked events and the routes. It
// stops at the first that fails and returns the write's outcome (dedup
// reports a dedup-key violation, which the caller records as a duplicate
// event), or an error that is not the write's own and fails the
// transaction. Statements that ran before a failure are the caller's to
// roll back.
func (st *txStatements) write(ctx context.Context, w store.Write, now int64) (outcome error, dedup bool, err error) {
	e := w.Event
	// fail sorts a statement's error into the write's outcome or a
	// transaction failure.
	fail := func(err error) (error, bool, error) {
		outcome, dedup := writeOutcome(e.EventID, err)
		if outcome == nil {
			return nil, false, err
		}
		return outcome, dedup, nil
	}

	if w.Replace {
		if _, err := st.deleteIgnored.ExecContext(ctx, e.Source, e.EventID); err != nil {
			return fail(err)
		}
	}
	if _, err := st.insertEvent.ExecContext(ctx,
		e.Source, e.EventID, e.Type, e.CustomerID, string(e.Status), e.Reason, e.Routing,
		micros(e.Created), now, e.APIVersion, e.ObjectID, e.DedupKey, e.Version, e.Payload, e.Account,
	); err != nil {
		return fail(err)
	}

	if w.State != nil {
		var res sql.Result
		var err error
		if w.ReadVersion == 0 {
			res, err = st.createCustomer.ExecContext(ctx, e.CustomerID, w.State, now)
		} else {
			res, err = st.updateCustomer.ExecContext(ctx, e.CustomerID, w.ReadVersion, w.State, now)
		}
		if err != nil {
			return fail(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, false, err
		}
		if n == 0 {
			return store.ErrFenced, false, nil
		}
	}

	for _, no := range w.Notifications {
		if _, err := st.insertOutbox.ExecContext(ctx,
			cmp.Or(no.CustomerID, e.CustomerID), no.Version, no.Kind,
			cmp.Or(no.EventID, e.EventID), micros(no.OccurredAt), no.Customer,
		); err != nil {
			return fail(err)
		}
	}
	for _, r := range w.Released {
		if r.Source == e.Source && r.EventID == e.EventID {
			// The event row just inserted is not one parked earlier (in
			// PostgreSQL the release cannot see it either).
			continue
		}
		if _, err := st.releaseEvent.ExecContext(ctx, r.Source, r.EventID, r.Version, r.Reason); err != nil {
			return fail(err)
		}
	}
	if e.CustomerID != "" {
		for _, objectID := range w.Routes {
			if _, err := st.insertRoute.ExecContext(ctx, objectID, e.CustomerID); err != nil {
				return fail(err)
			}
		}
	}
	return nil, false, nil
}

// writeOutcome translates the error of a write's statement into the
// write's result. It returns nil for an error that is not the write's own
// (I/O, a lock, the store closed), which fails the whole transaction.
// dedup reports a dedup-key violation, which the caller records as a
// duplicate event.
func writeOutcome(eventID string, err error) (outcome error, dedup bool) {
	var se *sqlitedriver.Error
	if !errors.As(err, &se) {
		return nil, false
	}
	code, msg := se.Code(), se.Error()
	switch {
	case code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY && strings.Contains(msg, msgEventsPK):
		return store.ErrDuplicate, false
	case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(msg, msgEventsDedupKey):
		return store.ErrDuplicate, true
	case code&0xff == sqlite3.SQLITE_CONSTRAINT, code&0xff == sqlite3.SQLITE_TOOBIG, code&0xff == sqlite3.SQLITE_MISMATCH:
		// Other constraint violations, values too large to store and
		// type mismatches follow from the write's values: retrying
		// cannot help, and failing the batch would fail every other
		// write with it, again and again.
		return fmt.Errorf("commit event %s: %w: %w", eventID, store.ErrInvalidArgument, err), false
	case !transient(err):
		// Any other error SQLite reports for the write's own statement
		// is the write's alone: it is rolled back to its savepoint and
		// retried by its caller, without failing the others.
		return fmt.Errorf("commit event %s: %w: %w", eventID, store.ErrUnavailable, err), false
	}
	return nil, false
}

// micros returns t as unix microseconds, the precision stored (as
// PostgreSQL's timestamptz keeps).
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros returns the UTC time us unix microseconds stand for.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

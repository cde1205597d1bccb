package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/hookd/hookd/store"
)

// maxPageSize caps ListEvents.PageSize and ReadNotifications' limit.
const maxPageSize = 1000

// GetCustomer returns the customer's stored state, or [store.ErrNotFound].
func (s *Store) GetCustomer(ctx context.Context, customerID string) (store.Customer, error) {
	var (
		c         store.Customer
		updatedAt int64
	)
	err := s.rdb.QueryRowContext(ctx, sqlGetCustomer, customerID).Scan(&c.CustomerID, &c.Version, &c.State, &updatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Customer{}, fmt.Errorf("customer %s: %w", customerID, store.ErrNotFound)
	}
	if err != nil {
		return store.Customer{}, unavailable("get customer "+customerID, err)
	}
	c.UpdatedAt = fromMicros(updatedAt)
	return c, nil
}

// GetEvent returns the stored event, its payload byte for byte as it was
// committed, or [store.ErrNotFound].
func (s *Store) GetEvent(ctx context.Context, source, eventID string) (store.Event, error) {
	e, _, err := scanEvent(s.rdb.QueryRowContext(ctx, sqlGetEvent, source, eventID), false)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Event{}, fmt.Errorf("event %s/%s: %w", source, eventID, store.ErrNotFound)
	}
	if err != nil {
		return store.Event{}, unavailable("get event "+eventID, err)
	}
	return e, nil
}

// scanEvent scans eventColumns, preceded by seq if withSeq.
func scanEvent(row interface{ Scan(...any) error }, withSeq bool) (store.Event, int64, error) {
	var (
		e                 store.Event
		seq               int64
		status            string
		created, received int64
	)
	dest := []any{&e.Source, &e.EventID, &e.Type, &e.CustomerID, &status, &e.Reason,
		&e.Routing, &created, &received, &e.APIVersion, &e.ObjectID, &e.DedupKey,
		&e.Version, &e.Payload, &e.Account}
	if withSeq {
		dest = append([]any{&seq}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return store.Event{}, 0, err
	}
	e.Status = store.Status(status)
	e.Created, e.ReceivedAt = fromMicros(created), fromMicros(received)
	return e, seq, nil
}

// ListEvents lists events newest first (by insertion order), filtered by
// customer and status, and returns the next page's token ("" after the
// last page). PageSize must be positive; above 1000 it is taken as 1000. A
// malformed PageToken or a non-positive PageSize gives an error wrapping
// [store.ErrInvalidArgument].
//
// With f.MaxBytes set, a page also ends where [store.PageLength] says: the
// sizes of the candidates' payloads are read first, and then the payloads
// of the page's events alone, so a page never holds (nor reads) more than
// about MaxBytes of payloads, unless its one event is larger.
//
// Paging is by keyset, so pages neither repeat nor skip events as new ones
// arrive.
func (s *Store) ListEvents(ctx context.Context, f store.ListEventsFilter) ([]store.Event, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	size := min(f.PageSize, maxPageSize)
	below := int64(math.MaxInt64)
	if f.PageToken != "" {
		var err error
		if below, err = parsePageToken(f.PageToken); err != nil {
			return nil, "", fmt.Errorf("list events: %w", err)
		}
	}
	listArgs := func(query string, filters []any) (string, []any) {
		return query, append([]any{below, size + 1}, filters...) // one more, to learn whether a next page exists
	}
	if f.MaxBytes <= 0 {
		query, args := listArgs(sqlListEvents(f))
		events, seqs, err := s.queryEvents(ctx, query, args)
		if err != nil {
			return nil, "", unavailable("list events", err)
		}
		if len(events) <= size {
			return events, "", nil
		}
		return events[:size], pageToken(seqs[size-1]), nil
	}

	// Bounded by bytes: measure the candidates first, then read the
	// payloads of only those that make the page.
	query, args := listArgs(sqlListEventSizes(f))
	seqs, sizes, err := s.queryEventSizes(ctx, query, args)
	if err != nil {
		return nil, "", unavailable("list events", err)
	}
	k := store.PageLength(sizes, size, f.MaxBytes)
	if k == 0 {
		return nil, "", nil
	}
	query, args = listArgs(sqlListEventRange(f))
	args[1] = seqs[k-1]
	events, got, err := s.queryEvents(ctx, query, args)
	if err != nil {
		return nil, "", unavailable("list events", err)
	}
	events = store.KeepMeasured(events, got, seqs[:k])
	if k == len(seqs) {
		return events, "", nil
	}
	return events, pageToken(seqs[k-1]), nil
}

// CountEvents returns how many events are stored with each status.
func (s *Store) CountEvents(ctx context.Context) (map[store.Status]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, sqlCountEvents)
	if err != nil {
		return nil, unavailable("count events", err)
	}
	defer rows.Close()
	counts := map[store.Status]int64{}
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, unavailable("count events", err)
		}
		counts[store.Status(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("count events", err)
	}
	return counts, nil
}

// queryEvents reads rows of seq and eventColumns.
func (s *Store) queryEvents(ctx context.Context, query string, args []any) ([]store.Event, []int64, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		events []store.Event
		seqs   []int64
	)
	for rows.Next() {
		e, seq, err := scanEvent(rows, true)
		if err != nil {
			return nil, nil, err
		}
		events, seqs = append(events, e), append(seqs, seq)
	}
	return events, seqs, rows.Err()
}

// queryEventSizes reads rows of seq and payload size.
func (s *Store) queryEventSizes(ctx context.Context, query string, args []any) (seqs, sizes []int64, err error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq, n int64
		if err := rows.Scan(&seq, &n); err != nil {
			return nil, nil, err
		}
		seqs, sizes = append(seqs, seq), append(sizes, n)
	}
	return seqs, sizes, rows.Err()
}

// LookupRoute returns the customer that objectID was first routed to, or
// [store.ErrNotFound].
func (s *Store) LookupRoute(ctx context.Context, objectID string) (string, error) {
	var customerID string
	err := s.rdb.QueryRowContext(ctx, sqlLookupRoute, objectID).Scan(&customerID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("route %s: %w", objectID, store.ErrNotFound)
	}
	if err != nil {
		return "", unavailable("lookup route "+objectID, err)
	}
	return customerID, nil
}

// ReadNotifications returns up to limit outbox rows after afterCursor ("":
// from the start), for one customer or all (customerID ""), in commit
// order, each with its Cursor set. Every committed row is final: SQLite
// commits one transaction at a time, so no row can later appear before
// one already read, and a reader that resumes from the last cursor it saw
// misses nothing and repeats nothing. limit must be positive; above 1000
// it is taken as 1000. A malformed cursor or a non-positive limit gives an
// error wrapping [store.ErrInvalidArgument].
func (s *Store) ReadNotifications(ctx context.Context, afterCursor, customerID string, limit int) ([]store.Notification, error) {
	after, err := parseCursor(afterCursor)
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("read notifications: %w: limit %d, want > 0", store.ErrInvalidArgument, limit)
	}
	query, args := sqlReadNotifications, []any{after, min(limit, maxPageSize)}
	if customerID != "" {
		query, args = sqlReadCustomerNotifications, append(args, customerID)
	}
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, unavailable("read notifications", err)
	}
	defer rows.Close()
	var ns []store.Notification
	for rows.Next() {
		var (
			n               store.Notification
			seq, occurredAt int64
		)
		if err := rows.Scan(&seq, &n.CustomerID, &n.Version, &n.Kind, &n.EventID, &occurredAt, &n.Customer); err != nil {
			return nil, unavailable("read notifications", err)
		}
		n.Cursor = strconv.FormatInt(seq, 10)
		n.OccurredAt = fromMicros(occurredAt)
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read notifications", err)
	}
	return ns, nil
}

// LatestCursor returns the cursor of the newest notification, or "" when
// there is none. Every committed row's position is final in SQLite.
func (s *Store) LatestCursor(ctx context.Context) (string, error) {
	var seq sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT max(seq) FROM outbox`).Scan(&seq); err != nil {
		return "", unavailable("latest cursor", err)
	}
	if !seq.Valid {
		return "", nil
	}
	return strconv.FormatInt(seq.Int64, 10), nil
}

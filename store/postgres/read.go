package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store"
)

// maxPageSize caps ListEvents.PageSize and ReadNotifications' limit.
const maxPageSize = 1000

// GetCustomer returns the customer's stored state, or [store.ErrNotFound].
func (s *Store) GetCustomer(ctx context.Context, customerID string) (store.Customer, error) {
	var c store.Customer
	err := s.pool.QueryRow(ctx, sqlGetCustomer, customerID).Scan(&c.CustomerID, &c.Version, &c.State, &c.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Customer{}, fmt.Errorf("customer %s: %w", customerID, store.ErrNotFound)
	}
	if err != nil {
		if classify(err) == faultData {
			// A NUL byte or invalid UTF-8 in the ID: no such customer
			// can ever be stored, and no retry helps.
			return store.Customer{}, fmt.Errorf("get customer %q: %w: %w", customerID, ErrInvalidArgument, err)
		}
		return store.Customer{}, unavailable("get customer "+customerID, err)
	}
	return c, nil
}

// GetEvent returns the stored event, its payload byte for byte as it was
// committed, or [store.ErrNotFound].
func (s *Store) GetEvent(ctx context.Context, source, eventID string) (store.Event, error) {
	rows, _ := s.pool.Query(ctx, sqlGetEvent, source, eventID)
	e, err := pgx.CollectExactlyOneRow(rows, scanEvent)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Event{}, fmt.Errorf("event %s/%s: %w", source, eventID, store.ErrNotFound)
	}
	if err != nil {
		return store.Event{}, unavailable("get event "+eventID, err)
	}
	return e, nil
}

// scanEvent scans eventColumns.
func scanEvent(row pgx.CollectableRow) (store.Event, error) {
	var e store.Event
	err := row.Scan(&e.Source, &e.EventID, &e.Type, &e.CustomerID, &e.Status, &e.Reason,
		&e.Routing, &e.Created, &e.ReceivedAt, &e.APIVersion, &e.ObjectID, &e.DedupKey,
		&e.Version, &e.Payload, &e.Account)
	return e, err
}

// ListEvents lists events newest first (by insertion order), filtered by
// customer and status, and returns the next page's token ("" after the
// last page). PageSize must be positive; above 1000 it is taken as 1000. A
// malformed PageToken or a non-positive PageSize gives an error wrapping
// [ErrInvalidArgument].
//
// With f.MaxBytes set, a page also ends where [store.PageLength] says: the
// sizes of the candidates' payloads are read first, and then the payloads
// of the page's events alone, so a page never holds (nor reads) more than
// about MaxBytes of payloads, unless its one event is larger.
//
// Paging is by keyset, so pages neither repeat nor skip events as new ones
// arrive; an event inserted by a transaction that commits after a later
// page was read (or, with MaxBytes, while its own page was read) can be
// missed by that listing.
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
		rows, _ := s.pool.Query(ctx, query, args...)
		events, seqs, err := collectEvents(rows)
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
	rows, _ := s.pool.Query(ctx, query, args...)
	var (
		seqs, sizes []int64
		seq, n      int64
	)
	_, err := pgx.ForEachRow(rows, []any{&seq, &n}, func() error {
		seqs, sizes = append(seqs, seq), append(sizes, n)
		return nil
	})
	if err != nil {
		return nil, "", unavailable("list events", err)
	}
	k := store.PageLength(sizes, size, f.MaxBytes)
	if k == 0 {
		return nil, "", nil
	}
	query, args = listArgs(sqlListEventRange(f))
	args[1] = seqs[k-1]
	rows, _ = s.pool.Query(ctx, query, args...)
	events, got, err := collectEvents(rows)
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
	rows, _ := s.pool.Query(ctx, sqlCountEvents)
	counts := map[store.Status]int64{}
	var (
		status string
		n      int64
	)
	_, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[store.Status(status)] = n
		return nil
	})
	if err != nil {
		return nil, unavailable("count events", err)
	}
	return counts, nil
}

// collectEvents collects rows of seq and eventColumns.
func collectEvents(rows pgx.Rows) ([]store.Event, []int64, error) {
	var seqs []int64
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		var seq int64
		var e store.Event
		err := row.Scan(&seq, &e.Source, &e.EventID, &e.Type, &e.CustomerID, &e.Status, &e.Reason,
			&e.Routing, &e.Created, &e.ReceivedAt, &e.APIVersion, &e.ObjectID, &e.DedupKey,
			&e.Version, &e.Payload, &e.Account)
		seqs = append(seqs, seq)
		return e, err
	})
	return events, seqs, err
}

// LookupRoute returns the customer that objectID was first routed to, or
// [store.ErrNotFound].
func (s *Store) LookupRoute(ctx context.Context, objectID string) (string, error) {
	var customerID string
	err := s.pool.QueryRow(ctx, sqlLookupRoute, objectID).Scan(&customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("route %s: %w", objectID, store.ErrNotFound)
	}
	if err != nil {
		return "", unavailable("lookup route "+objectID, err)
	}
	return customerID, nil
}

// ReadNotifications returns up to limit outbox rows after afterCursor ("":
// from the start), for one customer or all (customerID ""), in the order
// (transaction ID, sequence), each with its Cursor set.
//
// It returns only rows written by transactions older than every
// transaction still running in the cluster, so no row can later commit
// before the ones returned, and a reader that resumes from the last cursor
// it saw misses nothing and repeats nothing. The price: while any
// transaction in the cluster stays open (in any database), newer rows wait
// for it. limit must be positive; above 1000 it is taken as 1000. A
// malformed cursor gives an error wrapping [ErrInvalidArgument].
func (s *Store) ReadNotifications(ctx context.Context, afterCursor, customerID string, limit int) ([]store.Notification, error) {
	after, err := parseCursor(afterCursor)
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("read notifications: %w: limit %d, want > 0", ErrInvalidArgument, limit)
	}
	args := []any{fmt.Sprint(after.txid), after.seq, min(limit, maxPageSize)}
	query := sqlReadNotifications
	if customerID != "" {
		query = sqlReadCustomerNotifications
		args = append(args, customerID)
	}
	rows, _ := s.pool.Query(ctx, query, args...)
	ns, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Notification, error) {
		var (
			n    store.Notification
			txid string
			seq  int64
		)
		if err := row.Scan(&txid, &seq, &n.CustomerID, &n.Version, &n.Kind, &n.EventID, &n.OccurredAt, &n.Customer); err != nil {
			return n, err
		}
		p, err := rowPosition(txid, seq)
		if err != nil {
			return n, err
		}
		n.Cursor = p.cursor()
		return n, nil
	})
	if err != nil {
		return nil, unavailable("read notifications", err)
	}
	return ns, nil
}

// LatestCursor returns the cursor of the newest notification whose
// position is final, or "" when there is none.
func (s *Store) LatestCursor(ctx context.Context) (string, error) {
	var (
		txid string
		seq  int64
	)
	err := s.pool.QueryRow(ctx, sqlLatestCursor).Scan(&txid, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", unavailable("latest cursor", err)
	}
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return "", fmt.Errorf("latest cursor: txid %q: %w", txid, err)
	}
	return position{txid: t, seq: seq}.cursor(), nil
}

// GetCustomers reads several customers in one query: those stored, by ID;
// an ID with no row is absent from the map. It implements
// [store.CustomersGetter], which store/batch uses to serve many actors'
// loads at once.
//
// The query fails as a whole when one ID cannot be read (a NUL byte or
// invalid UTF-8 in it): then the error wraps [ErrInvalidArgument], and
// the caller, who cannot tell which ID it was, reads them apart. A
// transient failure wraps [store.ErrUnavailable]; any other error the
// server reports wraps neither.
func (s *Store) GetCustomers(ctx context.Context, customerIDs []string) (map[string]store.Customer, error) {
	rows, err := s.pool.Query(ctx, sqlGetCustomers, customerIDs)
	if err != nil {
		return nil, customersError(err)
	}
	found := make(map[string]store.Customer, len(customerIDs))
	var c store.Customer
	_, err = pgx.ForEachRow(rows, []any{&c.CustomerID, &c.Version, &c.State, &c.UpdatedAt}, func() error {
		found[c.CustomerID] = c
		c = store.Customer{} // the next row gets its own state bytes
		return nil
	})
	if err != nil {
		return nil, customersError(err)
	}
	return found, nil
}

// customersError wraps an error of GetCustomers as it documents.
func customersError(err error) error {
	switch classify(err) {
	case faultData:
		return fmt.Errorf("get customers: %w: %w", ErrInvalidArgument, err)
	case faultUnknown:
		return fmt.Errorf("get customers: %w", err)
	}
	return unavailable("get customers", err)
}

package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store"
)

var _ store.CustomerLister = (*Store)(nil)

// sqlListCustomerIDs walks the customers' primary key: ascending in the
// database's collation, the one the comparison uses too, so paging by the
// last ID neither repeats nor skips.
const sqlListCustomerIDs = `SELECT customer_id FROM customers WHERE customer_id > $1 ORDER BY customer_id LIMIT $2`

// ListCustomerIDs lists stored customers' IDs after after, ascending (see
// [store.CustomerLister]); limit must be positive, and above 1000 it is
// taken as 1000.
func (s *Store) ListCustomerIDs(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list customer IDs: %w: limit %d, want > 0", ErrInvalidArgument, limit)
	}
	rows, err := s.pool.Query(ctx, sqlListCustomerIDs, after, min(limit, maxPageSize))
	if err != nil {
		return nil, s.listCustomersError(after, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.listCustomersError(after, err)
	}
	return ids, nil
}

func (s *Store) listCustomersError(after string, err error) error {
	if classify(err) == faultData {
		// A NUL byte or invalid UTF-8 in after: no retry helps.
		return fmt.Errorf("list customer IDs after %q: %w: %w", after, ErrInvalidArgument, err)
	}
	return unavailable("list customer IDs", err)
}

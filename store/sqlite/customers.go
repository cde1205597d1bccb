package sqlite

import (
	"context"
	"fmt"

	"github.com/hookd/hookd/store"
)

var _ store.CustomerLister = (*Store)(nil)

// sqlListCustomerIDs walks the customers' primary key, in its (binary)
// order.
const sqlListCustomerIDs = `SELECT customer_id FROM customers WHERE customer_id > ?1 ORDER BY customer_id LIMIT ?2`

// ListCustomerIDs lists stored customers' IDs after after, ascending by
// their bytes (see [store.CustomerLister]); limit must be positive, and
// above 1000 it is taken as 1000.
func (s *Store) ListCustomerIDs(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list customer IDs: %w: limit %d, want > 0", store.ErrInvalidArgument, limit)
	}
	rows, err := s.rdb.QueryContext(ctx, sqlListCustomerIDs, after, min(limit, maxPageSize))
	if err != nil {
		return nil, unavailable("list customer IDs", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, unavailable("list customer IDs", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("list customer IDs", err)
	}
	return ids, nil
}

package batch

import (
	"context"
	"errors"
	"fmt"

	"github.com/hookd/hookd/store"
)

var _ store.CustomerLister = (*Store)(nil)

// ListCustomerIDs lists the customers of the backend (see
// [store.CustomerLister]). It returns an error wrapping
// errors.ErrUnsupported when the backend cannot list them.
func (s *Store) ListCustomerIDs(ctx context.Context, after string, limit int) ([]string, error) {
	l, ok := s.inner.(store.CustomerLister)
	if !ok {
		return nil, fmt.Errorf("list customer IDs: %T: %w", s.inner, errors.ErrUnsupported)
	}
	return l.ListCustomerIDs(ctx, after, limit)
}

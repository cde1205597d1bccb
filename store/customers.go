package store

import "context"

// CustomerLister is implemented by a backend that can list the customers
// it stores, for work that visits every customer (reprojecting their
// state).
type CustomerLister interface {
	// ListCustomerIDs returns up to limit IDs of stored customers, in
	// ascending order, all greater than after ("" for the start); fewer
	// than limit (possibly none) means the listing is at its end. Paging
	// by the last ID returned visits every customer stored before the
	// listing began once. A limit ≤ 0 gives an error wrapping
	// ErrInvalidArgument; a backend may cap a larger limit.
	ListCustomerIDs(ctx context.Context, after string, limit int) ([]string, error)
}

package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgtype"
)

// PlanCounts returns how many times a connection of the pool has executed
// its prepared statements that contain text with a generic and with a
// custom plan (pg_prepared_statements covers the session only, so give
// the store a pool of one connection).
func (s *Store) PlanCounts(ctx context.Context, text string) (generic, custom int64, err error) {
	err = s.pool.QueryRow(ctx, `
SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)
FROM pg_prepared_statements WHERE strpos(statement, $1) > 0`, text).Scan(&generic, &custom)
	return generic, custom, err
}

// WriteStatements returns every shape's write statement.
func WriteStatements() []string {
	var all []string
	for _, byNotes := range writeSQLs {
		for _, byRoutes := range byNotes {
			all = append(all, byRoutes[:]...)
		}
	}
	return all
}

// OptimisticBackoff is optimisticBackoff, for the tests.
const OptimisticBackoff = optimisticBackoff

// SetBased turns the set-based writing of batches on or off.
func (s *Store) SetBased(on bool) { s.setBased = on }

// DeliveryTx is the statement that begins each delivery transaction.
const DeliveryTx = sqlDeliveryTx

// DeliveryStatements are the delivery hot path's statements, by name.
var DeliveryStatements = map[string]string{
	"EnqueueRead":    sqlEnqueueRead,
	"EnqueueInsert":  sqlEnqueueInsert,
	"Promote":        sqlPromote,
	"Claim":          sqlClaim,
	"CompleteLookup": sqlCompleteLookup,
	"CompleteLock":   sqlCompleteLock,
	"InsertAttempts": sqlInsertAttempts,
	"Complete":       sqlComplete,
	"TakeDirect":     sqlTakeDirect,
	"DirectEndpoint": sqlDirectEndpoint,
	"DirectRead":     sqlReadNotifications,
	"DirectBusy":     sqlDirectBusy,
	"CommitDirect":   sqlCommitDirect,
	"DirectAttempts": sqlDirectAttempts,
}

// RegisterArrayCodecs installs the store's text[] and bytea[] encoders on
// a connection's type map, as the store's pool does on every connection.
func RegisterArrayCodecs(m *pgtype.Map) { registerArrayCodecs(m) }

// OutboxStallSQL is the stall detector's statement.
const OutboxStallSQL = sqlOutboxStall

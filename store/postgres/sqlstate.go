package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// fault says whose fault a failed statement is, and so what Commit and
// GetCustomers do about it.
type fault int

const (
	// faultTransient: the database could not be reached or could not run
	// the statement now (connection lost, server restarting, a lock or
	// statement timeout, a serialization failure, disk full). Every write
	// or read affected is answered ErrUnavailable and retried by its
	// caller; nothing is split, since splitting an outage only multiplies
	// the attempts.
	faultTransient fault = iota
	// faultData: the statement's own values can never be stored (SQLSTATE
	// classes 21, 22, 23 other than the unique keys Commit tells apart,
	// and 54). Retrying cannot help. Pinned on one write (its savepoint)
	// or one customer ID, it is that one's ErrInvalidArgument.
	faultData
	// faultUnknown: any other error the server reported. It is not known
	// to be transient, nor to follow from the data: a transaction shared
	// by several writes that fails with it is split so that the others
	// commit without the one that causes it, but alone it is answered
	// ErrUnavailable, never a permanent error (an unexpected server state
	// — a dropped table, a revoked grant — must not turn into answers
	// that tell senders never to retry).
	faultUnknown
)

// classify sorts err, from a statement or a commit, by SQLSTATE class
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
// Errors that are not the server's (a broken connection, a canceled
// context) are transient.
func classify(err error) fault {
	if errors.Is(err, errRolledBack) {
		return faultUnknown // answered by the server: nothing committed
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return faultTransient
	}
	if len(pgErr.Code) < 2 {
		return faultUnknown
	}
	switch pgErr.Code[:2] {
	case "21", // cardinality violation (e.g. a route listed twice)
		"22", // data exception: NUL byte, invalid UTF-8, value out of range, too long
		"23", // integrity constraint violation
		"54": // program limit exceeded: index row too large, too many arguments
		return faultData
	case "08", // connection exception
		"25", // invalid transaction state (25006 read-only: a standby after failover)
		"40", // transaction rollback: serialization failure, deadlock
		"53", // insufficient resources: disk full, out of memory, too many connections
		"55", // object not in prerequisite state: 55P03 lock_not_available (lock_timeout)
		"57", // operator intervention: statement_timeout, admin or crash shutdown
		"58": // system error: I/O
		return faultTransient
	}
	return faultUnknown
}

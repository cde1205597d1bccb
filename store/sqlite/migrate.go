package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"slices"
	"time"

	"github.com/hookd/hookd/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]store.Migration, error) {
	return store.ReadMigrations(migrationFiles, "migrations")
}

// Migrate brings the schema up to date by applying, in one transaction,
// every embedded migration not yet recorded in schema_migrations. It is
// idempotent, and safe to run from several stores or processes at once:
// the transaction takes SQLite's write lock first (BEGIN IMMEDIATE), so
// they take turns and the later ones find nothing to do. Versions in the
// database that this binary does not know (a newer binary migrated) are
// left alone.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := s.acquireWriter(ctx); err != nil {
		return unavailable("migrate", err)
	}
	defer s.releaseWriter()
	if s.closed {
		return unavailable("migrate", errClosed)
	}
	applied, err := s.migrate(ctx, ms)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, name := range applied {
		s.log.InfoContext(ctx, "applied migration", "migration", name, "path", s.path)
	}
	return nil
}

// migrate applies the migrations of ms not yet applied and returns their
// names. The caller owns the writer.
func (s *Store) migrate(ctx context.Context, ms []store.Migration) (applied []string, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, sqlCreateSchemaMigrations); err != nil {
		return nil, err
	}
	done, err := appliedVersions(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if slices.Contains(done, m.Version) {
			continue
		}
		// The driver runs every statement of a multi-statement text.
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("apply %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
			m.Version, m.Name, micros(time.Now())); err != nil {
			return nil, fmt.Errorf("record %s: %w", m.Name, err)
		}
		applied = append(applied, m.Name)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if len(applied) > 0 && s.stmts != nil {
		// The schema changed under the prepared statements; SQLite would
		// prepare them again, but start afresh.
		s.stmts.close()
		s.stmts = nil
	}
	return applied, nil
}

// appliedVersions returns the versions recorded in schema_migrations.
func appliedVersions(ctx context.Context, tx *sql.Tx) ([]int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

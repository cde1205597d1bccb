package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change, from migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string // file name
	sql     string
}

// migrations returns the embedded migrations in version order. It fails on
// a misnamed file or a repeated version, which are programming errors.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
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
func (s *Store) migrate(ctx context.Context, ms []migration) (applied []string, err error) {
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
		if slices.Contains(done, m.version) {
			continue
		}
		// The driver runs every statement of a multi-statement text.
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("apply %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
			m.version, m.name, micros(time.Now())); err != nil {
			return nil, fmt.Errorf("record %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
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

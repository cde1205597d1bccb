package postgres

// SavepointsOnly makes s commit every batch by the savepoint path.
func SavepointsOnly(s *Store) { s.savepointsOnly = true }

// SetCommits returns how many batches s committed by the set-based path,
// and how many it tried there and committed by savepoints instead.
func SetCommits(s *Store) (committed, fellBack int64) {
	return s.setCommits.Load(), s.setFallbacks.Load()
}

package batch

// Queued returns how many Commit calls wait in the queue (including any
// withdrawn by their callers and not yet dropped), so that tests can wait
// for callers to be queued instead of sleeping.
func (s *Store) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// QueuedLoads returns how many GetCustomer calls wait for the next
// batched query, so that tests can wait for readers to be queued.
func (s *Store) QueuedLoads() int {
	s.loads.mu.Lock()
	defer s.loads.mu.Unlock()
	return len(s.loads.queue)
}

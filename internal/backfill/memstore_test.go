package backfill

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hookd/hookd/store"
)

// memStore is an in-memory store.BackfillStore for these tests, keeping
// the contract's rules (phases, one staging per event ID, the apply order)
// so that the engine cannot lean on anything a real backend would not do.
// The backends implement the interface in their own branch.
type memStore struct {
	mu          sync.Mutex
	nextID      int64
	runs        map[int64]*store.BackfillRun
	staged      map[int64][]store.StagedEvent // in listing order, then Ord order
	checkpoints map[string]time.Time
	leases      map[string]lease
}

type lease struct {
	owner string
	until time.Time
}

var _ store.BackfillStore = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{
		runs:        make(map[int64]*store.BackfillRun),
		staged:      make(map[int64][]store.StagedEvent),
		checkpoints: make(map[string]time.Time),
		leases:      make(map[string]lease),
	}
}

func cloneRun(r *store.BackfillRun) store.BackfillRun {
	c := *r
	c.Counts = maps.Clone(r.Counts)
	return c
}

func (m *memStore) CreateBackfillRun(ctx context.Context, r store.BackfillRun) (store.BackfillRun, error) {
	if err := ctx.Err(); err != nil {
		return store.BackfillRun{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	now := time.Now()
	r.ID, r.Phase, r.Counts = m.nextID, store.BackfillListing, map[string]int64{}
	r.Listed, r.Applied, r.CreatedAt, r.UpdatedAt, r.FinishedAt = 0, 0, now, now, time.Time{}
	m.runs[r.ID] = &r
	return cloneRun(&r), nil
}

func (m *memStore) GetBackfillRun(ctx context.Context, id int64) (store.BackfillRun, error) {
	if err := ctx.Err(); err != nil {
		return store.BackfillRun{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return store.BackfillRun{}, store.ErrNotFound
	}
	return cloneRun(r), nil
}

func (m *memStore) UnfinishedBackfillRun(ctx context.Context, kind string) (store.BackfillRun, error) {
	if err := ctx.Err(); err != nil {
		return store.BackfillRun{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *store.BackfillRun
	for _, r := range m.runs {
		if r.Kind == kind && r.Phase != store.BackfillDone && (best == nil || r.ID > best.ID) {
			best = r
		}
	}
	if best == nil {
		return store.BackfillRun{}, store.ErrNotFound
	}
	return cloneRun(best), nil
}

func (m *memStore) StageBackfillPage(ctx context.Context, runID int64, events []store.StagedEvent, next string, last bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[runID]
	if !ok {
		return store.ErrNotFound
	}
	if r.Phase != store.BackfillListing {
		return fmt.Errorf("run %d is %s, not listing", runID, r.Phase)
	}
	staged := m.staged[runID]
	for _, ev := range events {
		if slices.ContainsFunc(staged, func(s store.StagedEvent) bool { return s.EventID == ev.EventID }) {
			continue
		}
		ev.Ord = 0
		ev.Payload = slices.Clone(ev.Payload)
		staged = append(staged, ev)
	}
	if last {
		// Oldest created first; within one second, the reverse of listing
		// order.
		idx := make([]int, len(staged))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			ta, tb := staged[a].Created.Unix(), staged[b].Created.Unix()
			if ta != tb {
				return int(ta - tb)
			}
			return b - a
		})
		ordered := make([]store.StagedEvent, len(staged))
		for o, i := range idx {
			ordered[o] = staged[i]
			ordered[o].Ord = int64(o + 1)
		}
		staged = ordered
		r.Phase = store.BackfillApplying
	}
	m.staged[runID] = staged
	r.Cursor, r.Listed, r.UpdatedAt = next, int64(len(staged)), time.Now()
	return nil
}

func (m *memStore) StagedEvents(ctx context.Context, runID, afterOrd int64, limit int) ([]store.StagedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[runID]
	if !ok {
		return nil, store.ErrNotFound
	}
	if r.Phase != store.BackfillApplying {
		return nil, fmt.Errorf("run %d is %s, not applying", runID, r.Phase)
	}
	var out []store.StagedEvent
	for _, ev := range m.staged[runID] {
		if ev.Ord > afterOrd && len(out) < limit {
			ev.Payload = slices.Clone(ev.Payload)
			out = append(out, ev)
		}
	}
	return out, nil
}

func (m *memStore) AdvanceBackfillRun(ctx context.Context, runID, applied int64, counts map[string]int64, done bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[runID]
	if !ok {
		return store.ErrNotFound
	}
	if r.Phase == store.BackfillDone {
		return fmt.Errorf("run %d is done", runID)
	}
	r.Applied = applied
	for k, v := range counts {
		r.Counts[k] += v
	}
	r.UpdatedAt = time.Now()
	if done {
		r.Phase, r.FinishedAt = store.BackfillDone, time.Now()
		delete(m.staged, runID)
	}
	return nil
}

func (m *memStore) GetCheckpoint(ctx context.Context, name string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.checkpoints[name]
	if !ok {
		return time.Time{}, store.ErrNotFound
	}
	return t, nil
}

func (m *memStore) SetCheckpoint(ctx context.Context, name string, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checkpoints[name] = t
	return nil
}

func (m *memStore) TryLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if l, ok := m.leases[name]; ok && l.owner != owner && now.Before(l.until) {
		return false, nil
	}
	m.leases[name] = lease{owner: owner, until: now.Add(ttl)}
	return true, nil
}

func (m *memStore) ReleaseLease(ctx context.Context, name, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.leases[name]; ok && l.owner == owner {
		delete(m.leases, name)
	}
	return nil
}

package postgres_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// migrateTo applies the source tree's migrations up to version to the
// database at url, recording them as Migrate does.
func migrateTo(t *testing.T, url string, version int) {
	t.Helper()
	conn := connect(t, url)
	if _, err := conn.Exec(t.Context(), `CREATE TABLE schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries { // in name order, so in version order
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("migration %s: %v", e.Name(), err)
		}
		if v > version {
			break
		}
		sql, err := os.ReadFile(filepath.Join("migrations", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), string(sql)); err != nil {
			t.Fatalf("apply %s: %v", e.Name(), err)
		}
		if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v, e.Name()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrationsKeepDeliveries migrates a database of release 0006 that
// holds deliveries of every status to the head (0007's fillfactor,
// 0008's partial status index): every delivery stays as it was, the
// listings by status find the same ones, and the queues go on in order.
func TestMigrationsKeepDeliveries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	migrateTo(t, url, 6)
	s, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)

	// At 0006: three customers' queues, their heads delivered, failed
	// and pending, the rest queued.
	if _, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_m", URL: "https://example.com"}); err != nil {
		t.Fatal(err)
	}
	var notes []storetest.Note
	for range 4 {
		for _, c := range []string{"cus_a", "cus_b", "cus_c"} {
			notes = append(notes, storetest.Note{CustomerID: c, Kind: "k"})
		}
	}
	ids := storetest.CommitNotes(t, s, notes...)
	for read := 0; read < len(ids); {
		r, _, err := s.Enqueue(ctx, "ep_m", 100)
		if err != nil {
			t.Fatal(err)
		}
		read += r
	}
	cs, err := s.Claim(ctx, "ep_m", "w1", 10, time.Minute)
	if err != nil || len(cs) != 3 {
		t.Fatalf("Claim: %d, %v; want the 3 heads", len(cs), err)
	}
	var rs []store.Result
	for _, c := range cs {
		out := map[string]store.Outcome{"cus_a": store.OutcomeDelivered, "cus_b": store.OutcomeFailed, "cus_c": store.OutcomeReleased}[c.CustomerID]
		rs = append(rs, store.Result{Lease: c.Lease, Outcome: out, NextAttemptAt: time.Now(),
			Attempt: store.Attempt{DeliveryID: c.ID, Attempt: c.Lease.Attempt, StartedAt: time.Now(), StatusCode: 200}})
	}
	if err := s.Complete(ctx, rs); err != nil {
		t.Fatal(err)
	}
	snapshot := func() ([]store.Delivery, map[store.DeliveryStatus][]string) {
		t.Helper()
		all := listDeliveries(t, s, store.DeliveryFilter{EndpointID: "ep_m", PageSize: 5})
		byStatus := map[store.DeliveryStatus][]string{}
		for _, st := range []store.DeliveryStatus{store.DeliveryQueued, store.DeliveryPending, store.DeliveryDelivered, store.DeliveryFailed} {
			for _, d := range listDeliveries(t, s, store.DeliveryFilter{Status: st, PageSize: 2}) {
				byStatus[st] = append(byStatus[st], d.ID)
			}
		}
		return all, byStatus
	}
	before, beforeByStatus := snapshot()
	if len(before) != len(ids) || len(beforeByStatus[store.DeliveryDelivered]) != 1 || len(beforeByStatus[store.DeliveryFailed]) != 1 ||
		len(beforeByStatus[store.DeliveryPending]) != 3 || len(beforeByStatus[store.DeliveryQueued]) != len(ids)-5 {
		t.Fatalf("at 0006: %d deliveries, by status %v", len(before), beforeByStatus)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if got := appliedMigrations(t, url); len(got) != migrationFiles(t) {
		t.Fatalf("schema_migrations: %v", got)
	}
	after, afterByStatus := snapshot()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("deliveries after the migration differ:\n%v\nwant\n%v", after, before)
	}
	if fmt.Sprint(afterByStatus) != fmt.Sprint(beforeByStatus) {
		t.Errorf("deliveries by status after the migration: %v, want %v", afterByStatus, beforeByStatus)
	}
	var idx []string
	rows, _ := connect(t, url).Query(ctx, `SELECT indexname FROM pg_indexes WHERE tablename = 'deliveries' ORDER BY 1`)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		idx = append(idx, n)
	}
	if rows.Err() != nil || slices.Contains(idx, "deliveries_status_seq_idx") || !slices.Contains(idx, "deliveries_status_seq_partial_idx") {
		t.Errorf("indexes of deliveries: %v (%v)", idx, rows.Err())
	}
	var opts []string
	if err := connect(t, url).QueryRow(ctx, `SELECT reloptions FROM pg_class WHERE relname = 'deliveries'`).Scan(&opts); err != nil ||
		!slices.Contains(opts, "fillfactor=50") {
		t.Errorf("deliveries reloptions: %v, %v", opts, err)
	}

	// The queues go on: every delivery but the failed one ends
	// delivered, each customer's in commit order.
	var order []string
	for {
		cs, err := s.Claim(ctx, "ep_m", "w2", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			break
		}
		var rs []store.Result
		for _, c := range cs {
			order = append(order, c.Notification.EventID)
			rs = append(rs, store.Result{Lease: c.Lease, Outcome: store.OutcomeDelivered,
				Attempt: store.Attempt{DeliveryID: c.ID, Attempt: c.Lease.Attempt, StartedAt: time.Now(), StatusCode: 200}})
		}
		if err := s.Complete(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	if len(order) != len(ids)-2 {
		t.Fatalf("after the migration %d delivered, want %d", len(order), len(ids)-2)
	}
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	for i := 3; i < len(ids); i++ { // ids[i-3] is the same customer's previous note
		if p, ok := pos[ids[i-3]]; ok && p > pos[ids[i]] {
			t.Errorf("%s delivered before %s, out of commit order", ids[i], ids[i-3])
		}
	}
}

// listDeliveries returns every delivery the filter selects, newest first.
func listDeliveries(t *testing.T, s *postgres.Store, f store.DeliveryFilter) []store.Delivery {
	t.Helper()
	var all []store.Delivery
	for {
		ds, next, err := s.ListDeliveries(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ds...)
		if next == "" {
			return all
		}
		f.PageToken = next
	}
}

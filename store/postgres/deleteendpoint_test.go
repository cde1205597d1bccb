package postgres_test

import (
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
)

// DeleteEndpoint removes the endpoint's deliveries and attempts, rows
// included (no foreign key cascades since 0010, and the API cannot show
// an orphaned attempt), and leaves another endpoint's alone.
func TestDeleteEndpointLeavesNoRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, url := setup(t)
	for _, id := range []string{"ep_gone", "ep_kept"} {
		if _, err := s.CreateEndpoint(ctx, store.Endpoint{ID: id, URL: "https://example.com/hook"}); err != nil {
			t.Fatal(err)
		}
	}
	storetest.CommitNotes(t, s, storetest.Note{CustomerID: "cus_1", Kind: "k"}, storetest.Note{CustomerID: "cus_2", Kind: "k"})
	for _, id := range []string{"ep_gone", "ep_kept"} {
		deadline := time.Now().Add(30 * time.Second)
		for read := 0; read < 2; {
			r, _, err := s.Enqueue(ctx, id, 10)
			if err != nil {
				t.Fatal(err)
			}
			if read += r; r == 0 && time.Now().After(deadline) {
				t.Fatalf("Enqueue(%s): read %d of 2", id, read)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cs, err := s.Claim(ctx, id, "w", 10, time.Minute)
		if err != nil || len(cs) != 2 {
			t.Fatalf("Claim(%s): %d, %v", id, len(cs), err)
		}
		var rs []store.Result
		for _, c := range cs {
			rs = append(rs, store.Result{Lease: c.Lease, Outcome: store.OutcomeRetry, Attempt: store.Attempt{
				DeliveryID: c.ID, Attempt: c.Lease.Attempt, StartedAt: time.Now(), StatusCode: 500, Error: "HTTP 500"}})
		}
		if err := s.Complete(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteEndpoint(ctx, "ep_gone"); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	for _, c := range []struct {
		sql  string
		want int
	}{
		{`SELECT count(*) FROM deliveries WHERE endpoint_id = 'ep_gone'`, 0},
		{`SELECT count(*) FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = a.delivery_seq)`, 0},
		{`SELECT count(*) FROM deliveries WHERE endpoint_id = 'ep_kept'`, 2},
		{`SELECT count(*) FROM delivery_attempts`, 2},
	} {
		if n := count(t, conn, c.sql); n != c.want {
			t.Errorf("%s: %d, want %d", c.sql, n, c.want)
		}
	}
}

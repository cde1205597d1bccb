package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store/postgres"
)

// OutboxStall, sampled every second by every member: it reports the
// committed notifications an open transaction holds back, up to its cap,
// and on a large outbox it walks the (txid, seq) index from xmin instead
// of scanning the table or starting parallel workers (on an outbox not
// yet analyzed, a parallel bitmap scan cost about 9 ms a sample, mostly
// starting the workers).
func TestOutboxStall(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, url := setup(t)
	conn := connect(t, url)
	insert := func(c *pgx.Conn, prefix string, n int) {
		t.Helper()
		_, err := c.Exec(ctx, `
INSERT INTO outbox (customer_id, version, kind, event_id, occurred_at, customer)
SELECT 'cus_' || i, 1, 'customer.updated', $1 || i, now(), ''
FROM generate_series(1, $2) i`, prefix, n)
		if err != nil {
			t.Fatal(err)
		}
	}

	// A large outbox, none of it waiting, shaped as group commits leave
	// it: 64 rows a transaction (txids far below any open one), each
	// with a customer state of 768 bytes.
	_, err := conn.Exec(ctx, `
INSERT INTO outbox (txid, customer_id, version, kind, event_id, occurred_at, customer)
SELECT (i / 64 + 1)::text::xid8, 'cus_' || i, 1, 'customer.updated', 'evt_old_' || i, now(),
       decode(repeat(md5(i::text), 48), 'hex')
FROM generate_series(1, 200000) i`)
	if err != nil {
		t.Fatal(err)
	}
	// Not analyzed, as in a new database until autovacuum gets to it:
	// the planner then guesses that a third of the rows match.
	rows, _ := conn.Query(ctx, `EXPLAIN `+postgres.OutboxStallSQL)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	for _, bad := range []string{"Seq Scan", "Gather", "Bitmap"} {
		if strings.Contains(plan, bad) {
			t.Errorf("the stall statement's plan on a 200,000-row outbox has a %s:\n%s", bad, plan)
		}
	}
	if !strings.Contains(plan, "Index Scan using outbox_txid_seq_idx") {
		t.Errorf("the stall statement's plan does not walk outbox_txid_seq_idx:\n%s", plan)
	}
	st, err := s.OutboxStall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Waiting != 0 || st.Oldest != 0 || st.Holder != nil {
		t.Fatalf("nothing held, OutboxStall = %+v", st)
	}

	// A transaction with an ID stays open; rows committed after it wait.
	holder := connect(t, url)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var pid int32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid(), pg_current_xact_id()`).Scan(&pid, nil); err != nil {
		t.Fatal(err)
	}
	insert(conn, "evt_waiting_", 3)
	st, err = s.OutboxStall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Waiting != 3 || st.Oldest <= 0 {
		t.Errorf("3 rows held back: OutboxStall = %+v", st)
	}
	// Other tests' transactions may be older than ours.
	if st.Holder == nil {
		t.Errorf("3 rows held back by pid %d: no holder reported", pid)
	}

	// More than the cap waits: the count stops at the cap.
	insert(conn, "evt_more_", postgres.OutboxStallCap)
	st, err = s.OutboxStall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Waiting != postgres.OutboxStallCap || st.Oldest <= 0 {
		t.Errorf("%d rows held back: OutboxStall = %+v, want Waiting %d", postgres.OutboxStallCap+3, st, postgres.OutboxStallCap)
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// xmin is the whole server's: a transaction of a test running beside
	// this one (in another database) can hold the rows back a moment.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err = s.OutboxStall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the holder committed: OutboxStall = %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

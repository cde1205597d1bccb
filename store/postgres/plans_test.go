package postgres_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store/postgres"
)

// planArgs are arguments for each delivery statement's EXPLAIN EXECUTE
// (a generic plan does not depend on them).
var planArgs = map[string]string{
	"EnqueueRead":    `'1', 0, 500`,
	"EnqueueInsert":  `'ep_plan', '{1,2}', '{cus_1,cus_2}', '{t,f}'`,
	"Promote":        `'ep_plan', '{cus_1,cus_2}'`,
	"Claim":          `'ep_plan', 'w1', 128, 60000000`,
	"CompleteLookup": `'{msg_a,msg_b}'`,
	"CompleteLock":   `'{1,2}'`,
	"InsertAttempts": `'{1,2}', '{1,1}', '{2026-01-01,2026-01-01}', '{1,1}', '{200,200}', '{"",""}', '{"",""}'`,
	"Complete":       `'{1,2}', '{w1,w1}', '{1,1}', '{1,1}', '{2026-01-01,2026-01-01}', '{200,200}', '{"",""}'`,
	"TakeDirect":     `'ep_plan', 'w1', 60000000`,
	"DirectEndpoint": `'ep_plan', 'w1'`,
	"DirectRead":     `'1', 0, 500`,
	"DirectBusy":     `'ep_plan', '{cus_1,cus_2}'`,
	"CommitDirect": `'ep_plan', '{1,2}', '{cus_1,cus_2}', '{msg_a,msg_b}', '{t,f}', '{0,1}', '{1,1}', '{2026-01-01,2026-01-01}',
		'{500,200}', '{"HTTP 500",""}'`,
	"DirectAttempts": `'{msg_a,msg_b}', '{2026-01-01,2026-01-01}', '{1,1}', '{500,200}', '{"HTTP 500",""}', '{"",""}'`,
}

// TestDeliveryPlansLookUpByIndex checks that the generic plans of the
// delivery hot path's statements, which the pgx statement cache settles
// on, find deliveries (and outbox rows) through an index, under the
// settings each delivery transaction begins with, both when the plans
// are made on small tables (as when the statement cache fills early in a
// database's life) and on large ones. (PostgreSQL 15 has no EXPLAIN
// (GENERIC_PLAN): each statement is PREPAREd and EXPLAIN EXECUTEd with
// plan_cache_mode = force_generic_plan.)
func TestDeliveryPlansLookUpByIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, url := setup(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	fill := func(prefix string, endpoints, customers, perCustomer int) {
		t.Helper()
		// Every customer's first delivery pending, one more queued, the
		// rest delivered: the shape of a busy endpoint's table.
		_, err := conn.Exec(ctx, `
INSERT INTO endpoints (id, url) SELECT $2 || e, 'https://example.com' FROM generate_series(1, $1) e`, endpoints, prefix)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, `
INSERT INTO outbox (txid, customer_id, version, kind, event_id, occurred_at, customer)
SELECT pg_current_xact_id(), 'cus_' || c, v, 'k', 'evt_' || e || '_' || c || '_' || v, now(), ''
FROM generate_series(1, $1) e, generate_series(1, $2) c, generate_series(1, $3) v;
`, endpoints, customers, perCustomer)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, `
INSERT INTO deliveries (endpoint_id, customer_id, outbox_seq, status, lease_owner, ended_at)
SELECT $4 || e, 'cus_' || c, c * 100 + v,
       CASE WHEN v = $3 THEN 'pending' WHEN v = $3 - 1 THEN 'queued' ELSE 'delivered' END,
       NULL, CASE WHEN v < $3 - 1 THEN now() END
FROM generate_series(1, $1) e, generate_series(1, $2) c, generate_series(1, $3) v
ORDER BY e, v, c`, endpoints, customers, perCustomer, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `ANALYZE endpoints, outbox, deliveries, delivery_attempts`); err != nil {
			t.Fatal(err)
		}
	}
	seqScan := regexp.MustCompile(`Seq Scan on (deliveries|outbox|delivery_attempts)\b`)
	// An index scan bounded by the endpoint alone reads all of its
	// deliveries: the backlog, on every call (a hashed subplan does so).
	wholeEndpoint := regexp.MustCompile(`(?m)Index Cond: \(endpoint_id = \$1\)$`)
	check := func(size string) {
		t.Helper()
		names := make([]string, 0, len(postgres.DeliveryStatements))
		for name := range postgres.DeliveryStatements {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			plan, err := genericPlan(ctx, conn, postgres.DeliveryStatements[name], planArgs[name])
			if err != nil {
				t.Fatalf("%s (%s tables): %v", name, size, err)
			}
			if seqScan.MatchString(plan) || strings.Contains(plan, "Hash Join") || strings.Contains(plan, "Merge Join") {
				t.Errorf("%s, generic plan on %s tables, scans a table or joins by hash or merge:\n%s", name, size, plan)
			}
			// (Complete's and Promote's small-table plans filter pairs of
			// rows too: a known cost, left for now.)
			if strings.Contains(name, "Direct") && strings.Contains(plan, "Join Filter:") {
				t.Errorf("%s, generic plan on %s tables, joins by filtering every pair of rows (quadratic in the batch):\n%s", name, size, plan)
			}
			if wholeEndpoint.MatchString(plan) {
				t.Errorf("%s, generic plan on %s tables, reads every delivery of the endpoint:\n%s", name, size, plan)
			}
		}
	}
	fill("ep_small", 1, 2, 3)
	check("small")
	fill("ep_large", 3, 500, 20)
	check("large")
}

// genericPlan returns the generic plan of sql with args, in a transaction
// begun as a delivery transaction is.
func genericPlan(ctx context.Context, conn *pgx.Conn, sql, args string) (string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, postgres.DeliveryTx); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `PREPARE plan_check AS `+sql); err != nil {
		return "", err
	}
	// A prepared statement outlives the transaction.
	defer conn.Exec(context.Background(), `DEALLOCATE plan_check`)
	rows, _ := tx.Query(ctx, `EXPLAIN EXECUTE plan_check(`+args+`)`)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

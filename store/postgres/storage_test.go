package postgres_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
)

// A customer state of a few kilobytes is stored as it is, not compressed
// (0011_customers_inline_state: compressing it on every update cost
// PostgreSQL CPU), and reads back byte for byte.
func TestCustomerStateStoredUncompressed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, url := setup(t)
	w := storetest.StateWrite("evt_big", "cus_big", 0)
	w.State = []byte(`{"invoices":{` + strings.Repeat(`"in_0000":{"status":"paid","amount_paid":2000},`, 100) + `}}`)
	if err := s.Commit(ctx, []store.Write{w})[0]; err != nil {
		t.Fatal(err)
	}
	c, err := s.GetCustomer(ctx, "cus_big")
	if err != nil || !bytes.Equal(c.State, w.State) {
		t.Fatalf("GetCustomer: %d bytes, %v; want the %d written", len(c.State), err, len(w.State))
	}
	stored := count(t, connect(t, url), `SELECT pg_column_size(state) FROM customers WHERE customer_id = 'cus_big'`)
	if stored < len(w.State) {
		t.Errorf("a %d-byte state is stored in %d bytes: compressed", len(w.State), stored)
	}
}

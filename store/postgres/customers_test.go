package postgres_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres"
)

// ListCustomerIDs pages through the stored customers in ascending order,
// each once, directly and through store/batch; events without a customer
// list none, and a non-positive limit is an invalid argument.
func TestListCustomerIDs(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	var want []string
	for _, i := range []int{7, 2, 11, 5, 1, 9, 3} {
		id := fmt.Sprintf("cus_%03d", i)
		want = append(want, id)
		if err := s.Commit(ctx, []store.Write{storetest.StateWrite("evt_"+id, id, 0)})[0]; err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	if err := s.RecordEvent(ctx, storetest.Event("evt_unrouted", "")); err != nil {
		t.Fatal(err)
	}
	b := batch.New(keepOpen{s}, batch.Config{}) // s is closed by setup
	t.Cleanup(b.Close)
	for name, l := range map[string]store.CustomerLister{"backend": s, "batch": b} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			ids, err := l.ListCustomerIDs(ctx, after, 3)
			if err != nil {
				t.Fatalf("%s: ListCustomerIDs(%q, 3): %v", name, after, err)
			}
			if len(ids) > 3 || pages > len(want) {
				t.Fatalf("%s: page of %d after %d pages", name, len(ids), pages)
			}
			got = append(got, ids...)
			if len(ids) < 3 {
				break
			}
			after = ids[len(ids)-1]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: listed %v, want %v", name, got, want)
		}
		if ids, err := l.ListCustomerIDs(ctx, "cus_004", 2); err != nil || !slices.Equal(ids, []string{"cus_005", "cus_007"}) {
			t.Fatalf("%s: after cus_004: %v, %v", name, ids, err)
		}
		if ids, err := l.ListCustomerIDs(ctx, want[len(want)-1], 10); err != nil || len(ids) != 0 {
			t.Fatalf("%s: after the last: %v, %v", name, ids, err)
		}
		for _, limit := range []int{0, -1} {
			if _, err := l.ListCustomerIDs(ctx, "", limit); !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("%s: limit %d: %v, want ErrInvalidArgument", name, limit, err)
			}
		}
	}
}

// keepOpen is the backend, for a batch.Store whose Close must leave it
// open; it still lists customers (a promoted method).
type keepOpen struct{ *postgres.Store }

func (keepOpen) Close() {}

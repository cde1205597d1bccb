package actors

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// Reproject through the cluster: the grain finds a state altered behind
// hookd's back, a dry run writes nothing, the real run repairs it at the
// next version, and the next live event applies on the repaired state.
func TestReprojectThroughTheGrain(t *testing.T) {
	st := pgtest.NewStore(t)
	sys, _ := startSystem(t, Config{Store: st})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for i, req := range []struct{ id, typ string }{{"evt_1", "customer.created"}, {"evt_2", "customer.updated"}} {
		resp, err := sys.Apply(ctx, "cus_r", customerEvent(req.id, req.typ, "cus_r", int64(100+i)))
		if err != nil || resp.GetStatus() != "applied" {
			t.Fatalf("apply %s: %v, %v", req.id, resp, err)
		}
	}
	// Alter the stored email behind the (resident) grain's back.
	c, err := st.GetCustomer(ctx, "cus_r")
	if err != nil {
		t.Fatal(err)
	}
	var s customer.State
	if err := json.Unmarshal(c.State, &s); err != nil {
		t.Fatal(err)
	}
	s.Email = "wrong@example.com"
	raw, _ := json.Marshal(s)
	if err := st.Commit(ctx, []store.Write{{ReadVersion: c.Version, State: raw, Event: store.Event{Source: "test", EventID: "tamper",
		CustomerID: "cus_r", Type: "test.tamper", Status: store.StatusIgnored, Routing: "none", Payload: []byte("{}")}}})[0]; err != nil {
		t.Fatal(err)
	}

	dry, err := sys.Reproject(ctx, "cus_r", true)
	if err != nil || !dry.GetChanged() || dry.GetVersion() != 2 || dry.GetNewVersion() != 2 || len(dry.GetChanges()) != 1 ||
		dry.GetChanges()[0].GetPath() != "email" || dry.GetChanges()[0].GetLive() != "wrong@example.com" || dry.GetChanges()[0].GetRecomputed() != "cus_r@example.com" {
		t.Fatalf("dry run: %v, %v", dry, err)
	}
	if after, _ := st.GetCustomer(ctx, "cus_r"); after.Version != c.Version+1 {
		t.Fatalf("dry run wrote: store version %d", after.Version)
	}
	resp, err := sys.Reproject(ctx, "cus_r", false)
	if err != nil || !resp.GetChanged() || resp.GetNewVersion() != 3 || len(resp.GetChanges()) != 1 {
		t.Fatalf("reproject: %v, %v", resp, err)
	}
	again, err := sys.Reproject(ctx, "cus_r", false)
	if err != nil || again.GetChanged() || again.GetVersion() != 3 || again.GetNewVersion() != 3 {
		t.Fatalf("second reproject: %v, %v", again, err)
	}
	next, err := sys.Apply(ctx, "cus_r", customerEvent("evt_3", "customer.updated", "cus_r", 102))
	if err != nil || next.GetStatus() != "applied" || next.GetVersion() != 4 {
		t.Fatalf("apply after the repair: %v, %v", next, err)
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/stripefake"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// The self-repair tests run hookd against internal/stripefake, a fake
// Stripe Events API (pages of 100, has_more, starting_after, created
// filters, 429s); its shapes are checked against stripe-mock in its own
// tests.

const fakeAPIKey = "sk_test_hookd_backfill"

// fakeHistory adds perCustomer events for each of customers to the fake
// API, created from base on (one second apart per customer), and returns
// them in the order a webhook sender would send them.
func fakeHistory(api *stripefake.Server, prefix string, customers, perCustomer int, base int64) [][]byte {
	var all [][]byte
	for c := range customers {
		for v := range perCustomer {
			typ := "customer.updated"
			if v == 0 {
				typ = "customer.created"
			}
			body := customerEvent(fmt.Sprintf("evt_%s_%03d_%d", prefix, c, v), typ, fmt.Sprintf("cus_%s_%03d", prefix, c),
				base+int64(v), fmt.Sprintf("v%d@example.com", v))
			api.AddEvent(body)
			all = append(all, body)
		}
	}
	return all
}

// checkCustomers asserts every customer is at version perCustomer with the
// last email, and its notifications are versions 1…perCustomer, each once.
func checkCustomers(t *testing.T, conn *grpc.ClientConn, prefix string, customers, perCustomer int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	cc := hookdv1.NewCustomerServiceClient(conn)
	for c := range customers {
		id := fmt.Sprintf("cus_%s_%03d", prefix, c)
		for {
			cu, err := cc.GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: id})
			if err == nil && cu.GetVersion() == int64(perCustomer) {
				if want := fmt.Sprintf("v%d@example.com", perCustomer-1); cu.GetEmail() != want {
					t.Fatalf("%s: email %q, want %q", id, cu.GetEmail(), want)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: %v (version %d), want version %d within %s", id, err, cu.GetVersion(), perCustomer, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stream, err := hookdv1.NewNotificationServiceClient(conn).Subscribe(ctx, &hookdv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for n := 0; n < customers*perCustomer; n++ {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d notifications: %v", n, err)
		}
		if !strings.HasPrefix(m.GetCustomerId(), "cus_"+prefix+"_") {
			n--
			continue
		}
		if m.GetVersion() != last[m.GetCustomerId()]+1 {
			t.Fatalf("%s: notification version %d after %d (applied twice, or a gap)", m.GetCustomerId(), m.GetVersion(), last[m.GetCustomerId()])
		}
		last[m.GetCustomerId()] = m.GetVersion()
	}
}

// runBackfill runs `hookd backfill` against h and returns its output.
func runBackfill(t *testing.T, grpcAddr string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := backfillCmd(t.Context(), append([]string{"--grpc-addr", grpcAddr}, args...), func(string) string { return "" }, &out)
	return out.String(), err
}

// hookd is stopped while 500 events for 100 customers happen (they reach
// only the API, never a webhook); restarted, its reconciliation at start
// applies all of them once, as in-order delivery would have.
func TestReconcileAfterDowntime(t *testing.T) {
	api := stripefake.New()
	defer api.Close()
	db := pgtest.NewDatabase(t)
	args := []string{"--stripe-api-key", fakeAPIKey, "--stripe-api-url", api.URL(), "--reconcile-interval", "1h"}
	h := startHookdOnStore(t, db, "", args...)
	// The reconciliation at start found nothing and set its checkpoint.
	waitMetric(t, h, `hookd_reconcile_runs_total{result="ok"}`, 1)
	if err := h.proc.terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	h.conn.Close()

	fakeHistory(api, "down", 100, 5, time.Now().Unix()-60)
	h = startHookdOnStore(t, db, "", args...)
	checkCustomers(t, h.conn, "down", 100, 5, 2*time.Minute)
	waitMetric(t, h, `hookd_reconcile_runs_total{result="ok"}`, 1)
	if n := metricValue(t, h, "hookd_reconcile_events_missing_total"); n != 500 {
		t.Errorf("hookd_reconcile_events_missing_total = %v, want 500", n)
	}
}

// waitMetric waits until a series reaches at least want.
func waitMetric(t *testing.T, h *hookd, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if v, ok := sampleValue(metricsText(t, h), series); ok && v >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %v within a minute", series, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Live webhooks and a backfill of the same window at once: no event takes
// effect twice, and the summary counts the overlap as duplicates.
func TestBackfillOverlappingLiveWebhooks(t *testing.T) {
	api := stripefake.New()
	defer api.Close()
	api.Fail429Every(7)
	h := startHookd(t, "--stripe-api-key", fakeAPIKey, "--stripe-api-url", api.URL(), "--reconcile-interval", "0")
	bodies := fakeHistory(api, "ovl", 40, 5, time.Now().Unix()-600)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Each customer's webhooks in order, customers shuffled.
		rng := rand.New(rand.NewPCG(1, 2))
		for _, c := range rng.Perm(40) {
			for v := range 5 {
				if a := h.post(t, bodies[c*5+v]); a.Code != 200 {
					t.Errorf("webhook: %+v", a)
				}
			}
		}
	}()
	out, err := runBackfill(t, h.grpcAddr, "--since", "1h")
	wg.Wait()
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	var run, fetched, applied, dup, parked, superseded, ignored, failed int
	if _, err := fmt.Sscanf(out[strings.LastIndex(out, "backfill run"):], "backfill run %d done: fetched %d, applied %d, duplicate %d, parked %d, superseded %d, ignored %d, failed %d",
		&run, &fetched, &applied, &dup, &parked, &superseded, &ignored, &failed); err != nil {
		t.Fatalf("summary line: %v\n%s", err, out)
	}
	if fetched != 200 || applied+dup+superseded != 200 || failed != 0 || dup == 0 {
		t.Errorf("fetched %d, applied %d, duplicate %d, superseded %d, failed %d: want 200 fetched, each applied or a duplicate (some duplicates: webhooks ran alongside)", fetched, applied, dup, superseded, failed)
	}
	checkCustomers(t, h.conn, "ovl", 40, 5, time.Minute)
}

// A backfill whose member is killed mid-listing resumes from its
// checkpoint when asked again: the pages it staged are not fetched again.
func TestBackfillResumesAfterKill(t *testing.T) {
	api := stripefake.New()
	defer api.Close()
	fakeHistory(api, "kill", 100, 10, time.Now().Unix()-3600) // 1,000 events: 10 pages
	db := pgtest.NewDatabase(t)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	args := []string{"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--admin-addr", "off", "--stripe-webhook-secret", testSecret,
		"--log-level", "warn", "--database-url", db, "--stripe-api-key", fakeAPIKey, "--stripe-api-url", api.URL(),
		"--reconcile-interval", "0", "--stripe-api-rate", "4"}
	proc := startProcess(t, httpAddr, args...)
	defer func() { proc.kill() }()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stream, err := hookdv1.NewAdminServiceClient(conn).Backfill(ctx, &hookdv1.BackfillRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			t.Fatalf("before the kill: %v", err)
		}
		if p.GetCounts().GetFetched() >= 300 {
			break
		}
	}
	proc.kill()
	before := eventPages(api.Requests())
	proc = startProcess(t, httpAddr, args...)
	out, err := runBackfill(t, grpcAddr)
	if err != nil {
		t.Fatalf("resumed backfill: %v\n%s", err, out)
	}
	t.Logf("resumed run:\n%s", out)
	if !strings.Contains(strings.ToLower(out), "resum") {
		t.Errorf("the second run does not say it resumed:\n%s", out)
	}
	pages := eventPages(api.Requests())
	again := 0
	for cursor, n := range pages {
		if n > 1 {
			again++
			t.Logf("page after %q fetched %d times", cursor, n)
		}
	}
	// At most the page in flight when the member died is fetched again.
	if again > 1 || len(pages) != 10 {
		t.Errorf("%d distinct pages (%d before the kill), %d fetched more than once: want 10, at most 1 again", len(pages), len(before), again)
	}
	checkCustomers(t, conn, "kill", 100, 10, time.Minute)
}

// eventPages counts the /v1/events requests by their starting_after.
func eventPages(requests []string) map[string]int {
	pages := map[string]int{}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || u.Path != "/v1/events" {
			continue
		}
		pages[u.Query().Get("starting_after")]++
	}
	return pages
}

// Importing 1,000 customers that exist in Stripe, then their webhooks:
// each customer's state is correct, and versions have no gap.
func TestImportExistingCustomers(t *testing.T) {
	api := stripefake.New()
	defer api.Close()
	created := time.Now().Unix() - 86400
	for c := range 1000 {
		api.AddObject("customers", fmt.Appendf(nil, `{"id":"cus_imp_%03d","object":"customer","created":%d,"email":"old%d@example.com","name":"Imported","livemode":false,"metadata":{}}`, c, created, c))
	}
	h := startHookd(t, "--stripe-api-key", fakeAPIKey, "--stripe-api-url", api.URL(), "--reconcile-interval", "0")
	out, err := runBackfill(t, h.grpcAddr, "--objects", "customers")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.Contains(out, "fetched 1000, applied 1000") {
		t.Errorf("import summary:\n%s\nwant 1000 fetched and applied", out)
	}
	cc := hookdv1.NewCustomerServiceClient(h.conn)
	for _, c := range []int{0, 499, 999} {
		cu, err := cc.GetCustomer(t.Context(), &hookdv1.GetCustomerRequest{CustomerId: fmt.Sprintf("cus_imp_%03d", c)})
		if err != nil || cu.GetEmail() != fmt.Sprintf("old%d@example.com", c) || cu.GetVersion() != 1 {
			t.Fatalf("imported customer %d: %v, %v; want version 1 with its email", c, cu, err)
		}
	}
	// Their webhooks, newer than the import, take effect on top of it.
	// They are created two minutes ahead (within --tolerance), so that the
	// second import below, fetched within those two minutes, is older
	// than them; an import fetched later would rightly win, as it would
	// be the newer state.
	ahead := time.Now().Unix() + 120
	for c := range 1000 {
		h.post(t, customerEvent(fmt.Sprintf("evt_imp_%03d", c), "customer.updated", fmt.Sprintf("cus_imp_%03d", c), ahead, fmt.Sprintf("new%d@example.com", c)))
	}
	for _, c := range []int{0, 499, 999} {
		cu, err := cc.GetCustomer(t.Context(), &hookdv1.GetCustomerRequest{CustomerId: fmt.Sprintf("cus_imp_%03d", c)})
		if err != nil || cu.GetEmail() != fmt.Sprintf("new%d@example.com", c) || cu.GetVersion() != 2 {
			t.Fatalf("customer %d after its webhook: %v, %v; want version 2 with the new email", c, cu, err)
		}
	}
	// A second import changes nothing already newer: superseded or duplicate.
	out, err = runBackfill(t, h.grpcAddr, "--objects", "customers", "--restart")
	if err != nil || strings.Contains(out, "applied 1000") {
		t.Fatalf("second import: %v\n%s\nwant nothing applied over newer webhooks", err, out)
	}
	checkVersionsContiguous(t, h.conn, "cus_imp_", 1000, 2)
}

// checkVersionsContiguous reads the notification stream until every
// customer with the prefix reached version want, and checks that each one's
// versions rise by one with no gap (an event may emit several
// notifications of one version: an import's first brings customer.created
// too).
func checkVersionsContiguous(t *testing.T, conn *grpc.ClientConn, prefix string, customers int, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stream, err := hookdv1.NewNotificationServiceClient(conn).Subscribe(ctx, &hookdv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	done := 0
	for done < customers {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("with %d of %d customers at version %d: %v", done, customers, want, err)
		}
		id, v := m.GetCustomerId(), m.GetVersion()
		if !strings.HasPrefix(id, prefix) {
			continue
		}
		if v != last[id] && v != last[id]+1 {
			t.Fatalf("%s: version %d after %d", id, v, last[id])
		}
		if v == want && last[id] != want {
			done++
		}
		last[id] = v
	}
}

// Re-projection: customers whose stored state was altered behind hookd's
// back are found by the dry run (exactly those), repaired by the real run
// (one new version, one notification each, state as replaying their
// events gives), and a second run changes nothing.
func TestReprojectRepairsAlteredState(t *testing.T) {
	db := pgtest.NewDatabase(t)
	h := startHookdOnStore(t, db, "")
	for c := range 10 {
		for v := range 3 {
			typ := "customer.updated"
			if v == 0 {
				typ = "customer.created"
			}
			h.post(t, customerEvent(fmt.Sprintf("evt_rp_%d_%d", c, v), typ, fmt.Sprintf("cus_rp_%d", c), 1700000000+int64(v), fmt.Sprintf("v%d@example.com", v)))
		}
	}
	if err := h.proc.terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	h.conn.Close()
	// Behind hookd's back: three customers' emails changed in the store.
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []int{2, 5, 7} {
		if _, err := conn.Exec(t.Context(), `UPDATE customers SET state = convert_to(replace(convert_from(state, 'UTF8'), 'v2@example.com', 'tampered@example.com'), 'UTF8') WHERE customer_id = $1`, fmt.Sprintf("cus_rp_%d", c)); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(t.Context())
	h = startHookdOnStore(t, db, "")

	var out bytes.Buffer
	reproject := func(args ...string) string {
		t.Helper()
		out.Reset()
		if err := reprojectCmd(t.Context(), append([]string{"--grpc-addr", h.grpcAddr}, args...), func(string) string { return "" }, &out); err != nil {
			t.Fatalf("reproject %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	dry := reproject("--dry-run")
	if !strings.Contains(dry, "10 customers checked, 3 would change") {
		t.Fatalf("dry run:\n%s\nwant 3 of 10", dry)
	}
	for _, c := range []int{2, 5, 7} {
		if !strings.Contains(dry, fmt.Sprintf("cus_rp_%d (version 3) would change", c)) || !strings.Contains(dry, `"tampered@example.com" → "v2@example.com"`) {
			t.Fatalf("dry run does not name cus_rp_%d's email:\n%s", c, dry)
		}
	}
	cc := hookdv1.NewCustomerServiceClient(h.conn)
	if cu, _ := cc.GetCustomer(t.Context(), &hookdv1.GetCustomerRequest{CustomerId: "cus_rp_2"}); cu.GetEmail() != "tampered@example.com" || cu.GetVersion() != 3 {
		t.Fatalf("after the dry run: %v, want it unchanged", cu)
	}
	real := reproject()
	if !strings.Contains(real, "10 customers checked, 3 changed") {
		t.Fatalf("real run:\n%s", real)
	}
	for c := range 10 {
		cu, err := cc.GetCustomer(t.Context(), &hookdv1.GetCustomerRequest{CustomerId: fmt.Sprintf("cus_rp_%d", c)})
		wantVersion := int64(3)
		if c == 2 || c == 5 || c == 7 {
			wantVersion = 4
		}
		if err != nil || cu.GetEmail() != "v2@example.com" || cu.GetVersion() != wantVersion {
			t.Fatalf("cus_rp_%d after the repair: %v, %v; want v2@example.com at version %d", c, cu, err, wantVersion)
		}
	}
	notes := collect(t, h, "", "cus_rp_5", 4)
	if notes[3].GetKind() != "customer.reprojected" || notes[3].GetVersion() != 4 || notes[3].GetCustomer().GetEmail() != "v2@example.com" {
		t.Fatalf("cus_rp_5's last notification: %v, want customer.reprojected at version 4", notes[3])
	}
	if again := reproject(); !strings.Contains(again, "10 customers checked, 0 changed") {
		t.Fatalf("second run:\n%s\nwant nothing changed", again)
	}
}

// AdminService needs the admin scope: a stranger (no token) and a
// read-scope token are refused before any work starts; hostile input is
// refused with INVALID_ARGUMENT; a member without an API key says what it
// lacks.
func TestAdminServiceRefusesStrangersAndBadInput(t *testing.T) {
	h := startHookd(t, "--admin-token", "tok_admin_0123456789", "--tokens", "read tok_read_0123456789")
	admin := hookdv1.NewAdminServiceClient(h.conn)
	first := func(ctx context.Context, req *hookdv1.BackfillRequest) error {
		s, err := admin.Backfill(ctx, req)
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}
	reproject := func(ctx context.Context) error {
		s, err := admin.Reproject(ctx, &hookdv1.ReprojectRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}
	ctx := t.Context()
	for _, c := range []struct {
		token string
		want  codes.Code
	}{{"", codes.Unauthenticated}, {"tok_read_0123456789", codes.PermissionDenied}} {
		if err := first(withToken(ctx, c.token), &hookdv1.BackfillRequest{}); status.Code(err) != c.want {
			t.Errorf("Backfill with token %q: %v, want %s", c.token, err, c.want)
		}
		if err := reproject(withToken(ctx, c.token)); status.Code(err) != c.want {
			t.Errorf("Reproject with token %q: %v, want %s", c.token, err, c.want)
		}
	}
	adminCtx := withToken(ctx, "tok_admin_0123456789")
	if err := first(adminCtx, &hookdv1.BackfillRequest{}); status.Code(err) != codes.FailedPrecondition || client.ReasonOf(err) != client.ReasonNotConfigured {
		t.Errorf("Backfill without --stripe-api-key: %v, want FAILED_PRECONDITION %s", err, client.ReasonNotConfigured)
	}
	for i, req := range []*hookdv1.BackfillRequest{
		{Since: durationpb.New(-time.Hour)},
		{Since: durationpb.New(365 * 24 * time.Hour)},
		{Objects: []string{"charges"}},
		{Objects: []string{strings.Repeat("x", 10000)}},
	} {
		if err := first(adminCtx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("bad Backfill request %d: %.200v, want INVALID_ARGUMENT", i, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookd/hookd/internal/cliflag"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// `hookd events list|get|replay`: EventService over gRPC, for people: a
// table or key-value lines by default, protojson lines with --json.

var eventsCommands = []command{
	{name: "list", args: "[--customer ID] [--status STATUS] [--type TYPE] [--since D | --from T] [--until T] [--limit N] [--json]", summary: "list stored events, newest first (token: read scope)",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return eventsList(ctx, args, e.getenv, e.stdout)
		}},
	{name: "get", args: "EVENT_ID [--json]", summary: "show one stored event with its payload (token: read scope)",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return eventsGet(ctx, args, e.getenv, e.stdout)
		}},
	{name: "replay", args: "EVENT_ID [--json]", summary: "deliver a stored event again through its customer's actor; idempotent (token: admin scope)",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return eventsReplay(ctx, args, e.getenv, e.stdout)
		}},
}

// statusNames are the --status values, as hookd's webhook answers spell them.
var statusNames = []string{"applied", "duplicate", "parked", "ignored", "superseded"}

func statusName(s hookdv1.EventStatus) string {
	if s == hookdv1.EventStatus_EVENT_STATUS_UNSPECIFIED {
		return "-"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "EVENT_STATUS_"))
}

func parseStatus(s string) (hookdv1.EventStatus, error) {
	if s == "" {
		return hookdv1.EventStatus_EVENT_STATUS_UNSPECIFIED, nil
	}
	if v, ok := hookdv1.EventStatus_value["EVENT_STATUS_"+strings.ToUpper(s)]; ok && v != 0 {
		return hookdv1.EventStatus(v), nil
	}
	return 0, &usageError{fmt.Sprintf("--status %q: want %s", s, strings.Join(statusNames, ", "))}
}

// usageError is a mistake in a command's arguments found after its flags
// were parsed: like a flag mistake, one line and nothing done.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// rpcError says what a failed call means to whoever typed the command.
func rpcError(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch st.Code() {
	case codes.Unauthenticated:
		return fmt.Errorf("%s: %s (pass --token or set HOOKD_TOKEN)", what, st.Message())
	case codes.PermissionDenied:
		return fmt.Errorf("%s: %s (the token lacks the scope)", what, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("%s: hookd unavailable: %s (is it running at --grpc-addr?)", what, st.Message())
	}
	return fmt.Errorf("%s: %s: %s", what, strings.ToLower(strings.ReplaceAll(st.Code().String(), "NotFound", "not found")), st.Message())
}

// eventsFlags are the flags of every events subcommand.
func eventsFlags(name, scope string) (*flag.FlagSet, *adminClientFlags, *bool) {
	fs := flag.NewFlagSet("hookd events "+name, flag.ContinueOnError)
	cf := new(adminClientFlags)
	cf.defineScoped(fs, scope)
	asJSON := fs.Bool("json", false, "print protojson, one object a line")
	return fs, cf, asJSON
}

// oneEventID is the single EVENT_ID argument of get and replay.
func oneEventID(fs *flag.FlagSet) (string, error) {
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		return "", &usageError{fmt.Sprintf("want one EVENT_ID (evt_...), got %d arguments", fs.NArg())}
	}
	return fs.Arg(0), nil
}

func writeJSONLine(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func eventsList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs, cf, asJSON := eventsFlags("list", "read")
	customer := fs.String("customer", "", "only this customer's events")
	statusFlag := fs.String("status", "", "only events with this status: "+strings.Join(statusNames, ", "))
	typ := fs.String("type", "", "only events of this type (invoice.paid)")
	since := fs.Duration("since", 0, "only events received in this past duration (1h)")
	from := fs.String("from", "", "only events received at or after this RFC 3339 time")
	until := fs.String("until", "", "only events received before this RFC 3339 time")
	limit := fs.Int("limit", 50, "at most this many events (0: all)")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	st, err := parseStatus(*statusFlag)
	if err != nil {
		return err
	}
	req := &hookdv1.ListEventsRequest{CustomerId: *customer, Status: st, Type: *typ}
	for _, b := range []struct {
		name, v string
		to      **timestamppb.Timestamp
	}{{"--from", *from, &req.ReceivedFrom}, {"--until", *until, &req.ReceivedBefore}} {
		if b.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.v)
		if err != nil {
			return &usageError{fmt.Sprintf("%s %q: want an RFC 3339 time such as 2026-12-01T10:00:00Z", b.name, b.v)}
		}
		*b.to = timestamppb.New(t)
	}
	switch {
	case *since < 0:
		return &usageError{"--since must be positive"}
	case *since > 0 && *from != "":
		return &usageError{"--since and --from both set where the listing starts: give one"}
	case *since > 0:
		req.ReceivedFrom = timestamppb.New(time.Now().Add(-*since))
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q (--customer ID selects a customer)", fs.Arg(0))}
	}
	if *limit < 0 {
		return &usageError{"--limit must be 0 or more"}
	}
	conn, err := cf.dial(getenv)
	if err != nil {
		return err
	}
	defer conn.Close()
	events := hookdv1.NewEventServiceClient(conn)
	var tw *tabwriter.Writer
	if !*asJSON {
		tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RECEIVED\tEVENT\tTYPE\tCUSTOMER\tSTATUS\tVERSION\tREASON")
	}
	n, token := 0, ""
	for {
		size := int32(500)
		if *limit > 0 && *limit-n < 500 {
			size = int32(*limit - n)
		}
		req.PageSize, req.PageToken = size, token
		resp, err := events.ListEvents(ctx, req)
		if err != nil {
			return rpcError("events list", err)
		}
		for _, ev := range resp.GetEvents() {
			if *limit > 0 && n == *limit {
				break
			}
			n++
			if *asJSON {
				if err := writeJSONLine(stdout, ev); err != nil {
					return err
				}
				continue
			}
			version := "-"
			if ev.GetVersion() > 0 {
				version = fmt.Sprint(ev.GetVersion())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(ev.GetReceivedAt()), ev.GetEventId(), ev.GetType(),
				orDash(ev.GetCustomerId()), statusName(ev.GetStatus()), version, ev.GetReason())
		}
		token = resp.GetNextPageToken()
		if token == "" || (*limit > 0 && n >= *limit) {
			break
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func eventsGet(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs, cf, asJSON := eventsFlags("get", "read")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	id, err := oneEventID(fs)
	if err != nil {
		return err
	}
	conn, err := cf.dial(getenv)
	if err != nil {
		return err
	}
	defer conn.Close()
	ev, err := hookdv1.NewEventServiceClient(conn).GetEvent(ctx, &hookdv1.GetEventRequest{EventId: id})
	if err != nil {
		return rpcError("events get "+id, err)
	}
	if *asJSON {
		return writeJSONLine(stdout, ev)
	}
	return printEvent(stdout, ev)
}

// printEvent writes ev as aligned key-value lines and its payload as
// indented JSON.
func printEvent(w io.Writer, ev *hookdv1.Event) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	st := statusName(ev.GetStatus())
	if r := ev.GetReason(); r != "" {
		st += " (" + r + ")"
	}
	rows := [][2]string{
		{"event", ev.GetEventId()},
		{"source", ev.GetSource()},
		{"type", ev.GetType()},
		{"customer", orDash(ev.GetCustomerId())},
		{"status", st},
		{"version", fmt.Sprint(ev.GetVersion())},
		{"routing", orDash(ev.GetRouting())},
		{"object", orDash(ev.GetObjectId())},
		{"account", orDash(ev.GetAccount())},
		{"api version", orDash(ev.GetApiVersion())},
		{"created", formatTime(ev.GetCreated())},
		{"received", formatTime(ev.GetReceivedAt())},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, ev.GetPayload(), "", "  "); err != nil {
		pretty.Reset()
		pretty.Write(ev.GetPayload()) // not JSON: as stored
	}
	_, err := fmt.Fprintf(w, "payload:\n%s\n", pretty.Bytes())
	return err
}

func eventsReplay(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs, cf, asJSON := eventsFlags("replay", "admin")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	id, err := oneEventID(fs)
	if err != nil {
		return err
	}
	conn, err := cf.dial(getenv)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := hookdv1.NewEventServiceClient(conn).ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: id})
	if err != nil {
		return rpcError("events replay "+id, err)
	}
	if *asJSON {
		return writeJSONLine(stdout, resp)
	}
	ev := resp.GetEvent()
	what := "replayed: " + statusName(resp.GetStatus())
	if resp.GetStatus() == hookdv1.EventStatus_EVENT_STATUS_DUPLICATE {
		what = "replayed: duplicate (nothing changed)"
	}
	now := statusName(ev.GetStatus())
	if ev.GetVersion() > 0 {
		now += fmt.Sprintf(" at version %d", ev.GetVersion())
	}
	if r := ev.GetReason(); r != "" {
		now += " (" + r + ")"
	}
	_, err = fmt.Fprintf(stdout, "%s %s, customer %s: %s; the event is %s\n", id, ev.GetType(), orDash(ev.GetCustomerId()), what, now)
	return err
}

func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

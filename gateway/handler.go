package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/internal/eventstatus"
	"github.com/hookd/hookd/internal/jsonw"
	"github.com/hookd/hookd/internal/loglimit"
	"github.com/hookd/hookd/internal/tracing"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// Defaults for the zero values of Config's fields.
const (
	// DefaultMaxBodyBytes is the default body limit. Stripe events are far
	// smaller (a few KiB; Stripe caps them well below this).
	DefaultMaxBodyBytes = 1 << 20
	// DefaultIngestTimeout is the default time one Ingest call may take.
	// Stripe itself waits only a few seconds more before it gives up on a
	// delivery and retries it.
	DefaultIngestTimeout = 10 * time.Second
	// rejectLogsPerSecond is how many "webhook rejected" lines each
	// rejection reason may write per second; the rest are counted (in
	// hookd_webhook_rejections_total and in the next line's "suppressed").
	rejectLogsPerSecond = 5
)

// Routes served by the handler New returns.
const (
	StripeWebhookPath = "/v1/webhooks/stripe"
	HealthzPath       = "/healthz"
	ReadyzPath        = "/readyz"
)

// Config configures the gateway's HTTP handler. The zero value of every
// optional field selects its documented default; Secrets and Ingest are
// required.
type Config struct {
	// Secrets are the Stripe endpoint signing secrets ("whsec_..."). A
	// signature made with any of them is accepted, so that a secret can be
	// rotated without dropping events. Surrounding whitespace is trimmed and
	// empty entries are dropped; at least one must remain.
	Secrets []string

	// Tolerance is how far a signature's timestamp may lie from Now, in
	// either direction. Default DefaultTolerance (300 s); negative is an
	// error.
	Tolerance time.Duration

	// MaxBodyBytes is the largest accepted body; larger bodies get 413.
	// Default DefaultMaxBodyBytes (1 MiB); negative is an error.
	MaxBodyBytes int64

	// IngestTimeout bounds each Ingest call; the deadline is derived from
	// the request's context, so a sender that hangs up cancels the call
	// too. Past it the sender gets 503 and retries. Default
	// DefaultIngestTimeout (10 s); negative is an error.
	IngestTimeout time.Duration

	// Ingest receives every verified, decoded event. Required. It must
	// answer only once the event is durable: the gateway answers 200
	// exactly when Ingest returns a status without error.
	Ingest hookdv1.IngestServiceClient

	// Logger receives one line per webhook outcome. Secrets and payloads
	// are never logged. Default: discard.
	Logger *slog.Logger

	// Now is the clock that signature timestamps are checked against.
	// Default time.Now; tests pin it.
	Now func() time.Time

	// Ready reports whether this process can take events; GET /readyz
	// answers 503 with its error when it returns one. It is called with the
	// probe request's context. Nil means always ready.
	Ready func(context.Context) error

	// OnReject, when set, is called after a webhook was answered 4xx, with
	// the status and the answer's reason (onreject.go). Optional.
	OnReject func(r *http.Request, status int, reason string)
}

// withDefaults returns a copy of c with defaults applied and Secrets
// normalized. It is the one place defaults are set.
func (c Config) withDefaults() Config {
	secrets := make([]string, 0, len(c.Secrets))
	for _, s := range c.Secrets {
		if s = strings.TrimSpace(s); s != "" {
			secrets = append(secrets, s)
		}
	}
	c.Secrets = secrets
	if c.Tolerance == 0 {
		c.Tolerance = stripe.DefaultTolerance
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.IngestTimeout == 0 {
		c.IngestTimeout = DefaultIngestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate reports every problem with a Config that has had its defaults
// applied.
func (c Config) validate() error {
	var errs []error
	if len(c.Secrets) == 0 {
		errs = append(errs, errors.New("no stripe webhook secret configured"))
	}
	if c.Ingest == nil {
		errs = append(errs, errors.New("no ingest client configured"))
	}
	if c.Tolerance < 0 {
		errs = append(errs, fmt.Errorf("negative tolerance %s", c.Tolerance))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("negative max body bytes %d", c.MaxBodyBytes))
	}
	if c.IngestTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative ingest timeout %s", c.IngestTimeout))
	}
	return errors.Join(errs...)
}

// New returns the gateway's HTTP handler:
//
//	POST /v1/webhooks/stripe  verify, decode, Ingest; see the package doc
//	GET  /healthz             200 {"status":"ok"} while the process runs
//	GET  /readyz              200 {"status":"ok"}, or 503 with cfg.Ready's error
//
// Nothing else: /metrics and pprof belong on hookd's admin listener, never
// on the public webhook port, so every other path is 404.
//
// Every answer the handler writes itself is a small JSON object; failures
// carry a readable "error". A wrong method gets 405 with Allow, an unknown
// path 404. New does not modify cfg. The handler is safe for concurrent
// use and starts no goroutines; timeouts on reading requests belong to the
// http.Server that serves it.
func New(cfg Config) (http.Handler, error) {
	_, mux, err := newGateway(cfg)
	return mux, err
}

// newGateway is New, which also returns the handler its routes use.
func newGateway(cfg Config) (*handler, http.Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, nil, fmt.Errorf("gateway config: %w", err)
	}
	h := &handler{cfg: cfg, log: cfg.Logger, limit: loglimit.NewLimiter(rejectLogsPerSecond)}

	mux := http.NewServeMux()
	// Method checks are done by hand rather than with "POST /path"
	// patterns so that 405s get a JSON body like every other answer.
	// A server span per webhook when tracing is on (internal/tracing);
	// inside it the request ID (requestid.go) wraps everything, so that
	// the rejection hook (onreject.go) and every log line see it.
	mux.Handle(StripeWebhookPath, tracing.HTTPHandler(http.MethodPost+" "+StripeWebhookPath,
		withRequestID(withOnReject(cfg.OnReject, instrument(h.stripeWebhook)))))
	mux.Handle(HealthzPath, onlyGet(http.HandlerFunc(h.healthz)))
	mux.Handle(ReadyzPath, onlyGet(http.HandlerFunc(h.readyz)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrorReason(w, http.StatusNotFound, "not found", "NOT_FOUND")
	})
	return h, mux, nil
}

// handler serves the gateway's routes. It is immutable after New.
type handler struct {
	cfg   Config
	log   *slog.Logger
	limit *loglimit.Limiter // samples the log lines of rejections
}

// ingestResult is the 200 answer to a webhook.
type ingestResult struct {
	EventID    string `json:"event_id"`
	Status     string `json:"status"`
	CustomerID string `json:"customer_id"`
	// Reason says why, for any status but a first applied delivery (for
	// example "already received" on a redelivery, or why it was ignored).
	Reason string `json:"reason,omitempty"`
}

// stripeWebhook handles POST /v1/webhooks/stripe. The checks run cheapest
// and least trusting first; nothing reaches Ingest unless it is signed by a
// configured secret within tolerance and decodes as a Stripe Event.
func (h *handler) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !h.webhookHead(ctx, w, r.Method, r.Header.Get("Content-Type")) {
		return
	}
	body, err := readBody(w, r, h.cfg.MaxBodyBytes)
	if err != nil {
		h.bodyFailed(ctx, w, err)
		return
	}
	h.webhook(ctx, w, body, r.Header.Get(stripe.SignatureHeaderName))
}

// webhookHead checks a webhook's method and Content-Type, and answers
// when either is wrong (then it returns false).
func (h *handler) webhookHead(ctx context.Context, w http.ResponseWriter, method, contentType string) bool {
	if method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(ctx, w, http.StatusMethodNotAllowed, rejectMethod, "method "+truncate(method)+" not allowed; use POST", nil)
		return false
	}
	if !isJSONContentType(contentType) {
		h.reject(ctx, w, http.StatusUnsupportedMediaType, rejectContentType, "Content-Type must be application/json", nil)
		return false
	}
	return true
}

// bodyFailed answers a webhook whose body could not be read: 413 when it
// is larger than the limit (an *http.MaxBytesError), else 400.
func (h *handler) bodyFailed(ctx context.Context, w http.ResponseWriter, err error) {
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		h.reject(ctx, w, http.StatusRequestEntityTooLarge, rejectTooLarge,
			"body larger than "+strconv.FormatInt(h.cfg.MaxBodyBytes, 10)+" bytes", nil)
		return
	}
	h.reject(ctx, w, http.StatusBadRequest, rejectReadBody, "could not read body", err)
}

// webhook is the rest of a webhook once its body is read, whichever HTTP
// server read it (net/http here, fasthttp in fast.go): verify, decode,
// check, Ingest, answer. body must stay the caller's: an event whose
// Ingest times out may still be stored from it after webhook returns.
func (h *handler) webhook(ctx context.Context, w http.ResponseWriter, body []byte, header string) {
	if len(body) == 0 {
		h.reject(ctx, w, http.StatusBadRequest, rejectEmpty, "empty body", nil)
		return
	}
	signedAt, err := stripe.VerifySigned(body, header, h.cfg.Secrets, h.cfg.Tolerance, h.cfg.Now())
	if err != nil {
		reason := rejectBadSignature
		if errors.Is(err, stripe.ErrTimestampOutOfTolerance) {
			reason = rejectBadTimestamp
		}
		// The sentinel messages name the problem and never a secret.
		h.reject(ctx, w, http.StatusBadRequest, reason, err.Error(), nil)
		return
	}
	// One JSON pass for the envelope and the object: an object that does
	// not decode is no reason to refuse the event (its actor records why
	// it ignores it), so objErr only keeps the object from going along.
	env, objs, objErr, err := stripe.Decode(body)
	if err != nil {
		h.reject(ctx, w, http.StatusBadRequest, rejectMalformed, err.Error(), nil)
		return
	}
	// An event may not claim to be created after it was signed (give or
	// take the tolerance).
	limits := envelope.Limits{MaxPayloadBytes: h.cfg.MaxBodyBytes, Latest: signedAt.Add(h.cfg.Tolerance)}
	if err := envelope.Check(env, limits); err != nil {
		h.reject(ctx, w, http.StatusBadRequest, rejectInvalidField, "invalid event: "+err.Error(), nil)
		return
	}

	if tracing.Enabled() {
		trace.SpanFromContext(ctx).SetAttributes(
			attribute.String("hookd.event_id", env.GetEventId()),
			attribute.String("hookd.event_type", env.GetType()),
			attribute.String("hookd.customer_id", env.GetCustomerId()))
	}
	ictx, cancel := context.WithTimeout(ctx, h.cfg.IngestTimeout)
	defer cancel()
	if objErr == nil {
		// An Ingest in this process hands the objects to the customer's
		// actor, which then need not decode the payload again; over gRPC
		// they stay behind.
		ictx = stripe.ContextWithObjects(ictx, env, objs)
	}
	resp, err := h.cfg.Ingest.Ingest(ictx, &hookdv1.IngestRequest{Envelope: env})
	if err != nil {
		h.ingestFailed(ctx, w, env, err)
		return
	}
	name, ok := statusName(resp.GetStatus())
	if !ok {
		// Ingest answered without saying the event is stored; 2xx would
		// lose it. Retrying is safe: a stored event comes back duplicate.
		h.log.ErrorContext(ctx, "ingest returned no event status",
			"event_id", loglimit.String(env.GetEventId()), "status", resp.GetStatus().String())
		w.Header().Set("Retry-After", "1")
		writeErrorReason(w, http.StatusServiceUnavailable, "event not stored; retry later", client.ReasonUnavailable)
		return
	}
	res := ingestResult{EventID: resp.GetEventId(), Status: name, CustomerID: resp.GetCustomerId(), Reason: answerReason(resp.GetReason())}
	if res.EventID == "" {
		res.EventID = env.GetEventId()
	}
	webhookEvents.WithLabelValues(name).Inc()
	// Checked first: the arguments alone (each boxed into an interface)
	// cost about 1% of hookd's CPU per webhook when nothing logs them.
	if h.log.Enabled(ctx, slog.LevelDebug) {
		h.log.DebugContext(ctx, "webhook ingested",
			"event_id", loglimit.String(res.EventID), "event_type", loglimit.String(env.GetType()),
			"customer_id", loglimit.String(res.CustomerID), "status", name, "version", resp.GetVersion())
	}
	writeBody(w, http.StatusOK, res.appendJSON(make([]byte, 0, 128)))
}

// ingestFailed answers an Ingest error with the code ingestHTTPStatus
// maps it to: 400 for what retrying cannot fix, else 503 with
// Retry-After, since the event may not be durable and the sender must
// retry. The body names hookd's reason (client.ReasonOf) when the error
// carries one.
func (h *handler) ingestFailed(ctx context.Context, w http.ResponseWriter, env *hookdv1.Envelope, err error) {
	st := status.Convert(err)
	ce := client.ErrorOf(err)
	var reason string
	if ce != nil {
		reason = ce.Reason
	}
	code, retry := ingestHTTPStatus(st.Code())
	if !retry {
		webhookRejections.WithLabelValues(rejectIngestInvalid).Inc()
		if ok, suppressed := h.limit.Allow(rejectIngestInvalid); ok {
			h.log.WarnContext(ctx, "ingest rejected webhook",
				"event_id", loglimit.String(env.GetEventId()), "customer_id", loglimit.String(env.GetCustomerId()),
				"reason", reason, "err", loglimit.Err(err), "suppressed", suppressed)
		}
		writeErrorReason(w, code, "event rejected: "+truncate(st.Message()), reason)
		return
	}
	h.log.ErrorContext(ctx, "ingest failed",
		"event_id", loglimit.String(env.GetEventId()), "customer_id", loglimit.String(env.GetCustomerId()),
		"grpc_code", st.Code().String(), "reason", reason, "err", loglimit.Err(err))
	var delay time.Duration
	if ce != nil {
		delay = ce.RetryDelay
	}
	w.Header().Set("Retry-After", retryAfter(delay))
	// The gRPC code and reason are safe to show; the message may describe
	// internals.
	writeErrorReason(w, code, "event not stored ("+st.Code().String()+"); retry later", reason)
}

// ingestHTTPStatus is the one table from an Ingest call's gRPC code to
// the webhook's HTTP answer, and whether the sender should retry (503 with
// Retry-After). Only InvalidArgument, which retrying cannot fix, is 400;
// every other code (Unavailable, DeadlineExceeded, ResourceExhausted,
// Aborted, Canceled, Internal, Unknown, Unimplemented, ...) means the
// event may not be durable, so the sender retries.
func ingestHTTPStatus(c codes.Code) (httpStatus int, retry bool) {
	switch c {
	case codes.InvalidArgument:
		return http.StatusBadRequest, false
	default:
		return http.StatusServiceUnavailable, true
	}
}

// retryAfter is the Retry-After value for a retry delay hookd asked for
// (google.rpc.RetryInfo): whole seconds, rounded up, at least 1, at most
// maxRetryAfter; 1 when it asked for none.
func retryAfter(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	secs = min(max(secs, 1), maxRetryAfter)
	return strconv.FormatInt(secs, 10)
}

// maxRetryAfter caps the Retry-After the gateway passes on, in seconds.
const maxRetryAfter = 300

// Rejection reasons: the label of hookd_webhook_rejections_total and the
// key the log lines of rejections are sampled by.
const (
	rejectMethod        = "method"         // not POST
	rejectContentType   = "content_type"   // not application/json
	rejectTooLarge      = "too_large"      // body over MaxBodyBytes
	rejectReadBody      = "read_body"      // the body could not be read
	rejectEmpty         = "empty"          // no body
	rejectBadSignature  = "bad_signature"  // missing, unparsable or wrong Stripe-Signature
	rejectBadTimestamp  = "bad_timestamp"  // signature timestamp outside tolerance
	rejectMalformed     = "malformed"      // not a Stripe Event (stripe.ErrMalformed)
	rejectInvalidField  = "invalid_field"  // breaks an input limit (envelope.Check)
	rejectIngestInvalid = "ingest_invalid" // Ingest answered InvalidArgument
)

// reject answers a request the gateway refuses before calling Ingest,
// counts it by reason, and logs it unless lines for that reason exceed
// rejectLogsPerSecond (a flood of bad requests must not fill the disk);
// the next line logged says how many were suppressed. msg is sent and
// logged cut; err, if non-nil, is logged (cut) but not sent.
func (h *handler) reject(ctx context.Context, w http.ResponseWriter, code int, reason, msg string, err error) {
	webhookRejections.WithLabelValues(reason).Inc()
	if ok, suppressed := h.limit.Allow(reason); ok {
		attrs := []any{"http_status", code, "reason", reason, "detail", loglimit.String(msg), "suppressed", suppressed}
		if err != nil {
			attrs = append(attrs, "err", loglimit.Err(err))
		}
		h.log.WarnContext(ctx, "webhook rejected", attrs...)
	}
	// The reason names the refusal stably, as gRPC errors' reasons do:
	// the metric label in upper case (BAD_SIGNATURE, INVALID_FIELD, …).
	writeErrorReason(w, code, msg, strings.ToUpper(reason))
}

// healthz reports that the process is up; it checks nothing else.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether cfg.Ready is satisfied.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Ready != nil {
		if err := h.cfg.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// onlyGet lets GET and HEAD through to next and answers any other method
// with a JSON 405.
func onlyGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeErrorReason(w, http.StatusMethodNotAllowed, "method "+truncate(r.Method)+" not allowed; use GET", "METHOD")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusName is the status's name in an HTTP answer: the stored status
// as it is ("applied", "duplicate", …), and false for none.
func statusName(s hookdv1.EventStatus) (string, bool) {
	st, ok := eventstatus.FromProto(s)
	return string(st), ok
}

// isJSONContentType reports whether a Content-Type header value is
// application/json, with any parameters (such as charset), even malformed
// ones: the body is checked on its own merits later.
func isJSONContentType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	return (err == nil || errors.Is(err, mime.ErrInvalidMediaParameter)) && mt == "application/json"
}

// readBody reads the whole request body, failing with an
// *http.MaxBytesError once it exceeds limit bytes (at once when the
// declared Content-Length already does).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	b, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// readAll reads r to EOF into a buffer sized from contentLength when it
// is known (+1, so that EOF is seen without growing it; io.ReadAll would
// start at 512 bytes and double). On an error it returns what it read.
func readAll(r io.Reader, contentLength int64) ([]byte, error) {
	size := 512
	if contentLength > 0 {
		size = int(contentLength) + 1
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// writeError writes {"error": msg} with the given status code.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// writeErrorReason is writeError with hookd's reason for a failed Ingest
// call ("reason":"INVALID_FIELD"), when there is one.
func writeErrorReason(w http.ResponseWriter, code int, msg, reason string) {
	if reason == "" {
		writeError(w, code, msg)
		return
	}
	writeJSON(w, code, map[string]string{"error": msg, "reason": reason})
}

// writeJSON writes v as a JSON body with the given status code. v is always
// one of this file's small, marshalable values.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable for the values passed here; keep the answer JSON.
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	writeBody(w, code, b)
}

// appendJSON appends r as json.Marshal writes it (the answer to every
// accepted webhook: by hand, not by reflection).
func (r ingestResult) appendJSON(b []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = jsonw.AppendString(b, r.EventID)
	b = append(b, `,"status":`...)
	b = jsonw.AppendString(b, r.Status)
	b = append(b, `,"customer_id":`...)
	b = jsonw.AppendString(b, r.CustomerID)
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonw.AppendString(b, r.Reason)
	}
	return append(b, '}')
}

// writeBody answers with b, a JSON document, and a newline.
func writeBody(w http.ResponseWriter, code int, b []byte) {
	if fw, ok := w.(*fastWriter); ok {
		fw.writeBody(code, b)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// truncate shortens a string from elsewhere before it goes into an answer,
// so that it cannot inflate the response.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// answerReason bounds a reason for the answer body: hookd writes reasons,
// but they quote sender-supplied IDs (each at most 255 bytes).
func answerReason(r string) string {
	const limit = 1024
	if len(r) <= limit {
		return r
	}
	return strings.ToValidUTF8(r[:limit], "") + "…"
}

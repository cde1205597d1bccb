package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/hookd/hookd/internal/loglimit"
	"github.com/hookd/hookd/internal/reqid"
	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/provider/stripe"
)

// Fast serves the gateway on fasthttp instead of net/http: the same routes
// and answers as New's handler, for some 15–20 µs less CPU per webhook (see
// docs/performance.md, "The webhook listener on fasthttp"). A signed
// POST to StripeWebhookPath, the path hookd spends nearly all its HTTP
// time on, takes the same steps as under net/http (request ID, method and
// Content-Type checks, then handler.webhook, metrics, the rejection hook)
// without building an http.Request; every other request (health, 404s,
// and every webhook while tracing is on, whose spans come from net/http
// middleware) goes to New's handler through fasthttpadaptor, unchanged.
//
// Differences a sender can see, all at the server level: HTTP/1.1 only
// (no HTTP/2 over TLS), request headers over MaxHeaderBytes get 431, what
// is not HTTP 400, and ReadTimeout bounds reading the whole request, each
// a JSON error on a connection then closed (net/http's server bounds the
// header alone more tightly and answers these in plain text); a sender
// that hangs up mid-Ingest no longer cancels the call, which then ends by
// Config.IngestTimeout. Build the server with Server.
type Fast struct {
	h        *handler
	std      fasthttp.RequestHandler // New's handler, through fasthttpadaptor
	onReject func(r *http.Request, status int, reason string)
	writers  sync.Pool // *fastWriter
}

// Limits of the server Fast.Server builds, besides Config.MaxBodyBytes.
const (
	// MaxHeaderBytes bounds a request's line and headers (fasthttp's read
	// buffer): a Stripe delivery's are well under 2 KiB.
	MaxHeaderBytes = 16 << 10
	// ReadTimeout bounds reading one request, from its first byte;
	// WriteTimeout writing its answer; IdleTimeout a kept-alive connection
	// waiting for its next request. The same as hookd's net/http server.
	ReadTimeout  = 30 * time.Second
	WriteTimeout = 30 * time.Second
	IdleTimeout  = 2 * time.Minute
)

// NewFast returns the gateway for a fasthttp server; cfg is as for New.
func NewFast(cfg Config) (*Fast, error) {
	h, std, err := newGateway(cfg)
	if err != nil {
		return nil, err
	}
	return &Fast{h: h, std: fasthttpadaptor.NewFastHTTPHandler(std), onReject: h.cfg.OnReject}, nil
}

// Server returns a fasthttp server for f with the limits above: serve it
// on a listener (wrapped with TLS by the caller when wanted) with
// Serve, and stop it with ShutdownWithContext. log receives the server's
// own complaints (failed connections), at warn level.
func (f *Fast) Server(log *slog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            f.Serve,
		ErrorHandler:       f.serverError,
		ReadTimeout:        ReadTimeout,
		WriteTimeout:       WriteTimeout,
		IdleTimeout:        IdleTimeout,
		ReadBufferSize:     MaxHeaderBytes,
		MaxRequestBodySize: int(f.h.cfg.MaxBodyBytes),
		// Bodies over the limit reach the handler as a stream, which
		// answers them as net/http's gateway does (readBody).
		StreamRequestBody: true,
		// No multipart parsing (fasthttp would spool large forms to
		// temporary files): a webhook is JSON.
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		CloseOnShutdown:              true,
		Logger:                       fastLogger{log: log, limit: f.h.limit},
	}
}

// Serve answers one request.
func (f *Fast) Serve(fc *fasthttp.RequestCtx) {
	// The exact path as sent: anything else, even what cleans to it, is
	// for net/http's mux to answer (404, or a redirect) as it always has.
	if tracing.Enabled() || string(fc.Request.Header.RequestURI()) != StripeWebhookPath {
		f.std(fc)
		return
	}
	start := time.Now()
	w := f.writer(fc)
	defer f.release(w)
	ctx := f.requestID(fc)
	h := f.h
	method := http.MethodPost
	if !fc.IsPost() {
		method = string(fc.Method())
	}
	if h.webhookHead(ctx, w, method, string(fc.Request.Header.ContentType())) {
		if body, err := f.readBody(fc, w); err != nil {
			h.bodyFailed(ctx, w, err)
		} else {
			h.webhook(ctx, w, body, string(fc.Request.Header.Peek(stripe.SignatureHeaderName)))
		}
	}
	f.answered(ctx, fc, w, start)
}

// drainBytes is how much of a body over the limit readBody reads and
// discards before the answer, so that a sender still writing it reads the
// 413 rather than a reset connection (net/http's server reads up to 256
// KiB for the same reason); past it, the connection is closed on it.
const drainBytes = 4 << 20

// readBody returns a copy of the request's body (fasthttp reuses its
// buffer for the connection's next request, and an event whose Ingest
// times out may still be stored from it), or an *http.MaxBytesError once
// it exceeds MaxBodyBytes. The server streams bodies over the limit
// (Server: StreamRequestBody), so that one is never held whole.
func (f *Fast) readBody(fc *fasthttp.RequestCtx, w *fastWriter) ([]byte, error) {
	limit := f.h.cfg.MaxBodyBytes
	stream := fc.RequestBodyStream()
	if stream == nil { // a server without StreamRequestBody
		body := bytes.Clone(fc.PostBody())
		w.read = body
		if int64(len(body)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		return body, nil
	}
	cl := int64(fc.Request.Header.ContentLength()) // -1: chunked
	if cl > limit {
		return nil, f.tooLarge(fc, stream)
	}
	// One byte past the limit tells an oversized body from one just at it.
	b, err := readAll(io.LimitReader(stream, limit+1), cl)
	w.read = b
	switch {
	case int64(len(b)) > limit:
		return nil, f.tooLarge(fc, stream)
	case err != nil:
		return nil, err
	}
	return b, nil
}

// tooLarge reads and discards up to drainBytes of the rest of an
// oversized body, marks the connection to close after the answer, and
// returns the error for it.
func (f *Fast) tooLarge(fc *fasthttp.RequestCtx, stream io.Reader) error {
	_, _ = io.CopyN(io.Discard, stream, drainBytes)
	fc.SetConnectionClose()
	return &http.MaxBytesError{Limit: f.h.cfg.MaxBodyBytes}
}

// serverError answers what fasthttp could not read as a request, as
// net/http's gateway would: a body over the limit gets the gateway's 413
// (counted, logged and handed to the rejection hook like any rejection);
// oversized headers 431, a timeout 408, anything else 400, each a JSON
// error. fasthttp closes the connection afterwards.
func (f *Fast) serverError(fc *fasthttp.RequestCtx, err error) {
	start := time.Now()
	w := f.writer(fc)
	defer f.release(w)
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge) && string(fc.Request.Header.RequestURI()) == StripeWebhookPath:
		ctx := f.requestID(fc)
		f.h.bodyFailed(ctx, w, &http.MaxBytesError{Limit: f.h.cfg.MaxBodyBytes})
		f.answered(ctx, fc, w, start)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeErrorReason(w, http.StatusRequestEntityTooLarge,
			"body larger than "+strconv.FormatInt(f.h.cfg.MaxBodyBytes, 10)+" bytes", "TOO_LARGE")
	case errors.As(err, &small):
		writeErrorReason(w, http.StatusRequestHeaderFieldsTooLarge,
			"request headers larger than "+strconv.Itoa(MaxHeaderBytes)+" bytes", "HEADER_TOO_LARGE")
	case errors.As(err, &netErr) && netErr.Timeout():
		writeErrorReason(w, http.StatusRequestTimeout, "request not received in time", "TIMEOUT")
	default:
		writeErrorReason(w, http.StatusBadRequest, "malformed HTTP request", "MALFORMED_HTTP")
	}
}

// requestID is withRequestID for fasthttp: the sender's X-Request-Id when
// it is valid, else a new one, in the answer and in the returned context.
func (f *Fast) requestID(fc *fasthttp.RequestCtx) context.Context {
	id := string(fc.Request.Header.Peek(reqid.Header))
	if !reqid.Valid(id) {
		id = reqid.New()
	}
	fc.Response.Header.SetCanonical(headerRequestID, []byte(id))
	// Not fc: fasthttp's context ends with the server, not the request,
	// and net/http's server does not end a request's context before the
	// handler returns either, unless the sender hangs up.
	return reqid.With(context.Background(), id)
}

// answered counts the answer (instrument) and hands a 4xx to the
// rejection hook (withOnReject).
func (f *Fast) answered(ctx context.Context, fc *fasthttp.RequestCtx, w *fastWriter, start time.Time) {
	code := w.status()
	webhookSeconds.Observe(time.Since(start).Seconds())
	webhookAnswers.WithLabelValues(strconv.Itoa(code)).Inc()
	if f.onReject == nil || code < 400 || code > 499 {
		return
	}
	r := new(http.Request)
	if err := fasthttpadaptor.ConvertRequest(fc, r, true); err != nil {
		f.h.log.WarnContext(ctx, "rejected webhook not recorded", "err", err)
		return
	}
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(bytes.Clone(w.read[:min(len(w.read), rejectBodyPrefix)])))
	f.onReject(r, code, rejectionReason(fc.Response.Body()))
}

// writer returns a pooled fastWriter for fc.
func (f *Fast) writer(fc *fasthttp.RequestCtx) *fastWriter {
	w, _ := f.writers.Get().(*fastWriter)
	if w == nil {
		w = &fastWriter{header: http.Header{}}
	}
	clear(w.header)
	w.fc, w.code, w.read = fc, 0, nil
	return w
}

// release returns w to the pool.
func (f *Fast) release(w *fastWriter) {
	w.fc, w.read = nil, nil
	f.writers.Put(w)
}

// fastWriter is the http.ResponseWriter the gateway's answers are written
// through on fasthttp: headers set before WriteHeader go out with it.
type fastWriter struct {
	fc     *fasthttp.RequestCtx
	header http.Header
	code   int    // 0 until WriteHeader
	read   []byte // what readBody read of the body (for the rejection hook)
}

func (w *fastWriter) Header() http.Header { return w.header }

func (w *fastWriter) WriteHeader(code int) {
	if w.code != 0 {
		return
	}
	w.code = code
	for k, vs := range w.header {
		for _, v := range vs {
			w.fc.Response.Header.Add(k, v)
		}
	}
	w.fc.SetStatusCode(code)
}

func (w *fastWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.fc.Write(b)
}

// The answer headers writeBody sets, in canonical form.
var (
	headerRequestID = []byte(reqid.Header)
	headerNoSniff   = []byte("X-Content-Type-Options")
	headerCache     = []byte("Cache-Control")
	valueJSON       = []byte("application/json")
	valueNoSniff    = []byte("nosniff")
	valueNoStore    = []byte("no-store")
)

// writeBody is writeBody (handler.go) for fasthttp: the same headers and
// body, set on fasthttp's response without going through w.header.
func (w *fastWriter) writeBody(code int, b []byte) {
	w.WriteHeader(code) // whatever the gateway set before: Allow, Retry-After
	h := &w.fc.Response.Header
	h.SetContentTypeBytes(valueJSON)
	h.SetCanonical(headerNoSniff, valueNoSniff)
	h.SetCanonical(headerCache, valueNoStore)
	w.fc.Response.AppendBody(b)
	w.fc.Response.AppendBody(newline)
}

var newline = []byte{'\n'}

func (w *fastWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// fastLogger passes fasthttp's log lines to slog, at most
// rejectLogsPerSecond a second with a count of those suppressed, as the
// gateway's rejections: fasthttp logs every connection it could not
// serve (garbage, a timeout mid-request), and a stranger can open many.
type fastLogger struct {
	log   *slog.Logger
	limit *loglimit.Limiter
}

func (l fastLogger) Printf(format string, args ...any) {
	if l.log == nil {
		return
	}
	if ok, suppressed := l.limit.Allow("http_server"); ok {
		l.log.Warn("webhook listener: "+fmt.Sprintf(format, args...), "suppressed", suppressed)
	}
}

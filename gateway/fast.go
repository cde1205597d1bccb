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

	"github.com/hookd/hookd/internal/reqid"
	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/provider/stripe"
)

// Fast serves the gateway on fasthttp instead of net/http: the same routes
// and answers as New's handler, for about 15 µs less CPU per webhook (see
// docs/performance.md, "The webhook listener on fasthttp"). A signed
// POST to StripeWebhookPath, the path hookd spends nearly all its HTTP
// time on, takes the same steps as under net/http (request ID, method and
// Content-Type checks, then handler.webhook, metrics, the rejection hook)
// without building an http.Request; every other request (health, 404s,
// and every webhook while tracing is on, whose spans come from net/http
// middleware) goes to New's handler through fasthttpadaptor, unchanged.
//
// Differences a sender can see, all at the server level: a body over
// MaxBodyBytes is refused before it is read to the end (413, the same
// JSON answer, without the body's first bytes for the rejection hook),
// request headers over MaxHeaderBytes get 431, and ReadTimeout bounds
// reading the whole request (net/http's server bounds the header alone
// more tightly). Build the server with Server.
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
		Handler:               f.Serve,
		ErrorHandler:          f.serverError,
		ReadTimeout:           ReadTimeout,
		WriteTimeout:          WriteTimeout,
		IdleTimeout:           IdleTimeout,
		ReadBufferSize:        MaxHeaderBytes,
		MaxRequestBodySize:    int(f.h.cfg.MaxBodyBytes),
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                fastLogger{log},
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
	ctx := f.requestID(fc, w)
	h := f.h
	method := http.MethodPost
	if !fc.IsPost() {
		method = string(fc.Method())
	}
	if h.webhookHead(ctx, w, method, string(fc.Request.Header.ContentType())) {
		body := fc.PostBody()
		if int64(len(body)) > h.cfg.MaxBodyBytes { // the server's limit is the same; this keeps Serve safe alone
			h.bodyFailed(ctx, w, &http.MaxBytesError{Limit: h.cfg.MaxBodyBytes})
		} else {
			// fasthttp reuses the body's buffer for the connection's next
			// request, and an event whose Ingest times out may still be
			// stored from it: the event gets its own copy.
			h.webhook(ctx, w, bytes.Clone(body), string(fc.Request.Header.Peek(stripe.SignatureHeaderName)))
		}
	}
	f.answered(ctx, fc, w, start)
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
		ctx := f.requestID(fc, w)
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
func (f *Fast) requestID(fc *fasthttp.RequestCtx, w *fastWriter) context.Context {
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
	body := fc.Request.Body()
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(bytes.Clone(body[:min(len(body), rejectBodyPrefix)])))
	f.onReject(r, code, rejectionReason(fc.Response.Body()))
}

// writer returns a pooled fastWriter for fc.
func (f *Fast) writer(fc *fasthttp.RequestCtx) *fastWriter {
	w, _ := f.writers.Get().(*fastWriter)
	if w == nil {
		w = &fastWriter{header: http.Header{}}
	}
	clear(w.header)
	w.fc, w.code = fc, 0
	return w
}

// release returns w to the pool.
func (f *Fast) release(w *fastWriter) {
	w.fc = nil
	f.writers.Put(w)
}

// fastWriter is the http.ResponseWriter the gateway's answers are written
// through on fasthttp: headers set before WriteHeader go out with it.
type fastWriter struct {
	fc     *fasthttp.RequestCtx
	header http.Header
	code   int // 0 until WriteHeader
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

// fastLogger passes fasthttp's log lines to slog.
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	if l.log != nil {
		l.log.Warn("webhook listener: " + fmt.Sprintf(format, args...))
	}
}

package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// rejectBodyPrefix is how much of a rejected request's body OnReject sees.
const rejectBodyPrefix = 1 << 10

// withOnReject calls onReject after next answered a webhook with a 4xx,
// with the reason of the answer's JSON body ("reason", else "error"). The
// request it passes has a Body holding at most the first
// rejectBodyPrefix bytes of what next read. Nil onReject: next as it is.
func withOnReject(onReject func(r *http.Request, status int, reason string), next http.HandlerFunc) http.HandlerFunc {
	if onReject == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		body := &prefixReader{r: r.Body}
		r.Body = body
		rw := &rejectRecorder{ResponseWriter: w}
		next(rw, r)
		if rw.status < 400 || rw.status > 499 {
			return
		}
		reason := rejectionReason(rw.body.Bytes())
		seen := r.Clone(r.Context())
		seen.Body = io.NopCloser(bytes.NewReader(body.prefix.Bytes()))
		onReject(seen, rw.status, reason)
	}
}

// prefixReader keeps the first rejectBodyPrefix bytes read through it.
type prefixReader struct {
	r      io.ReadCloser
	prefix bytes.Buffer
}

func (p *prefixReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if room := rejectBodyPrefix - p.prefix.Len(); room > 0 && n > 0 {
		p.prefix.Write(b[:min(n, room)])
	}
	return n, err
}

func (p *prefixReader) Close() error { return p.r.Close() }

// rejectRecorder notes the status and the start of a 4xx answer's body.
type rejectRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *rejectRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *rejectRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.status >= 400 && r.status <= 499 {
		if room := rejectBodyPrefix - r.body.Len(); room > 0 {
			r.body.Write(b[:min(len(b), room)])
		}
	}
	return r.ResponseWriter.Write(b)
}

func (r *rejectRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// rejectionReason is the reason OnReject gets for a 4xx answer's JSON
// body: its "reason", then ": " and its "error" when both are set.
func rejectionReason(body []byte) string {
	var answer struct{ Error, Reason string }
	_ = json.Unmarshal(body, &answer)
	reason := answer.Reason
	if reason == "" {
		reason = answer.Error
	} else if answer.Error != "" {
		reason += ": " + answer.Error
	}
	return reason
}

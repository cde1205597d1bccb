package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The receiver reads the event ID of hookd's delivery bodies without
// decoding them, and decodes any other body.
func TestEventID(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"cursor":"1-2","customerId":"cus_1","eventId":"evt_123","customer":{"id":"cus_1"}}`, "evt_123"},
		{`{"eventId" : "evt_spaced"}`, "evt_spaced"},
		{`{"eventId":"evt_\u0031"}`, "evt_1"},
		{`{"customerId":"cus_1"}`, ""},
	} {
		got, err := eventID([]byte(c.body))
		if err != nil || got != c.want {
			t.Errorf("eventID(%s) = %q, %v; want %q", c.body, got, err, c.want)
		}
	}
	if _, err := eventID([]byte(`{"eventId":`)); err == nil {
		t.Error("eventID of a cut body: no error")
	}
}

// The receiver answers what Go's HTTP client sends, keep-alive, and
// answers 400 to what it cannot read, without recording it.
func TestDeliverySinkServesHTTPClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newDeliverySink(ln, 2*time.Second)
	go s.accept()
	defer s.stop()
	url := "http://" + ln.Addr().String() + "/bench"
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 50 {
		body := fmt.Sprintf(`{"cursor":"c%d","customerId":"cus_1","eventId":"evt_%d","customer":{"id":"cus_1"}}`, i, i%40)
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("request %d: %s, %v", i, resp.Status, err)
		}
		resp.Body.Close()
	}
	s.mu.Lock()
	requests, bad, conns := s.requests, s.bad, len(s.conns)
	s.mu.Unlock()
	if s.count() != 40 || requests != 50 || bad != 0 {
		t.Fatalf("%d events, %d requests, %d bad; want 40, 50, 0", s.count(), requests, bad)
	}
	if conns != 1 {
		t.Errorf("%d connections open; want the one kept alive", conns)
	}
	// Chunked (no Content-Length): 400, nothing recorded.
	req, _ := http.NewRequest(http.MethodPost, url, io.MultiReader(strings.NewReader(`{"eventId":"evt_chunked"}`)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || s.has("evt_chunked") {
		t.Fatalf("chunked body: %s, recorded %v; want 400, not recorded", resp.Status, s.has("evt_chunked"))
	}
	for _, raw := range []string{
		"GET /bench HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
		"POST /bench HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
		"POST /bench HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
		"POST /bench HTTP/1.1\r\nno colon\r\n\r\n",
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw)
		got, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
			t.Errorf("%q: answered %q; want 400 and the connection closed", raw, got)
		}
	}
	if s.count() != 40 {
		t.Errorf("%d events recorded; bad requests must record none", s.count())
	}
	// A connection that stops halfway through a request is closed once
	// the timeout passes, without an answer.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /bench HTTP/1.1\r\nContent-")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	began := time.Now()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 0 || time.Since(began) > 8*time.Second {
		t.Errorf("a stalled request: read %q, %v after %v; want the connection closed after about 2 s", got, err, time.Since(began))
	}
}

// FuzzReadRequestHead: a request head either reads as a POST with a
// Content-Length within the receiver's bound, or is an error; never a
// panic, never a length the receiver would not read.
func FuzzReadRequestHead(f *testing.F) {
	f.Add([]byte("POST /bench HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("POST /bench HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		length, _, err := readRequestHead(bufio.NewReaderSize(bytes.NewReader(b), 64))
		if err == nil && (length < 0 || length > sinkMaxBody || !bytes.HasPrefix(b, []byte("POST "))) {
			t.Fatalf("read %q: length %d, no error", b, length)
		}
	})
}

package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchClient checks the bench's HTTP client against net/http's
// server: the request arrives whole with its headers, the answer comes
// back, connections are reused, and a connection the server closed while
// idle, or closes after an answer, costs no failed request.
func TestBenchClient(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	var mu sync.Mutex
	var got []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("Stripe-Signature")+" "+string(body))
		mu.Unlock()
		if string(body) == "close" {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"applied","echo":"`+string(body)+`"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := newBenchClient(srv.URL+"/v1/webhooks/stripe?x=1", 4, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	post := func(body string) {
		t.Helper()
		code, resp, err := c.Post("t=1,v1=ab", []byte(body))
		if err != nil {
			t.Fatalf("Post(%q): %v", body, err)
		}
		if want := `{"status":"applied","echo":"` + body + `"}`; code != http.StatusAccepted || string(resp) != want {
			t.Fatalf("Post(%q) = %d %s, want 202 %s", body, code, resp, want)
		}
	}
	for i := range 10 {
		post(strings.Repeat("x", i*100))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("10 sequential posts used %d connections, want 1", n)
	}
	if want := "POST /v1/webhooks/stripe?x=1 application/json t=1,v1=ab " + strings.Repeat("x", 900); got[9] != want {
		t.Errorf("server saw %q, want %q", got[9], want)
	}

	post("close") // answered, then the server closes: the client must not reuse it
	post("after close")
	srv.CloseClientConnections() // idle connection closed under the client
	post("after idle close")
	if n := conns.Load(); n != 3 {
		t.Errorf("used %d connections, want 3 (one per close)", n)
	}
	if len(got) != 13 {
		t.Errorf("server saw %d requests, want 13 (no request sent twice)", len(got))
	}

	srv.Close()
	if _, _, err := c.Post("s", []byte("{}")); err == nil {
		t.Error("Post to a closed server succeeded")
	}
}

package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPostgresPID names the environment variable that may give the test
// server's postmaster process ID to CPU; without it CPU asks the server
// (the parent of a backend's process).
const EnvPostgresPID = "HOOKD_TEST_POSTGRES_PID"

var postmaster struct {
	sync.Mutex
	pid  int
	err  error
	done bool
}

// CPU returns the CPU time (user and system) that the test server's
// processes have used so far: the postmaster's, its live children's (every
// backend, autovacuum, the WAL writer, the checkpointer) and its reaped
// children's, read from Linux's /proc. It reports false when the server
// is not a process of this machine (or /proc cannot be read).
//
// The difference of two readings is the server's CPU between them, in
// clock ticks (10 ms) per process. It counts everything the server did
// meanwhile: other tests' databases, autovacuum and checkpoints
// included, so benchmarks that use it should run alone (-run '^$', one
// package) and over enough work (seconds) that ticks and background work
// stay small against it.
func CPU(t testing.TB) (time.Duration, bool) {
	t.Helper()
	pid, err := postmasterPID(t)
	if err != nil {
		return 0, false
	}
	ticks, err := treeTicks(pid)
	if err != nil {
		return 0, false
	}
	return time.Duration(ticks) * time.Second / userHZ, true
}

// postmasterPID finds the server's postmaster once per process.
func postmasterPID(t testing.TB) (int, error) {
	postmaster.Lock()
	defer postmaster.Unlock()
	if postmaster.done {
		return postmaster.pid, postmaster.err
	}
	postmaster.done = true
	if v := os.Getenv(EnvPostgresPID); v != "" {
		postmaster.pid, postmaster.err = strconv.Atoi(v)
		return postmaster.pid, postmaster.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn := connect(t, ctx, serverURL(t))
	defer conn.Close(ctx)
	var backend int
	if postmaster.err = conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); postmaster.err != nil {
		return 0, postmaster.err
	}
	st, err := readStat(backend)
	if err != nil {
		postmaster.err = err // not this machine's, or no /proc
		return 0, err
	}
	postmaster.pid = st.ppid
	return postmaster.pid, nil
}

// userHZ is the clock ticks per second of /proc's CPU times.
const userHZ = 100

type procStat struct {
	ppid  int
	ticks int64 // utime + stime + cutime + cstime
}

// readStat reads /proc/PID/stat. The command name, in parentheses, may
// hold spaces: the fields are those after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	// After the name: state (3), ppid (4), …, utime (14), stime (15),
	// cutime (16), cstime (17).
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return procStat{}, errors.New("short /proc stat")
	}
	var st procStat
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, err
	}
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return procStat{}, err
		}
		st.ticks += n
	}
	return st, nil
}

// children returns the live children of pid: from
// /proc/PID/task/PID/children when the kernel keeps it, else by scanning
// /proc.
func children(pid int) ([]int, error) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		var out []int
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return out, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if st, err := readStat(child); err == nil && st.ppid == pid {
			out = append(out, child)
		}
	}
	return out, nil
}

// treeTicks sums the CPU ticks of pid and of its children. The
// postmaster is read first: a backend reaped between the reads is missed
// by this sample (a tick or so).
func treeTicks(pid int) (int64, error) {
	root, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	ticks := root.ticks
	kids, err := children(pid)
	if err != nil {
		return 0, err
	}
	for _, child := range kids {
		st, err := readStat(child)
		if err != nil || st.ppid != pid {
			continue // exited since the listing
		}
		ticks += st.ticks
	}
	return ticks, nil
}

// Settle vacuums and analyzes the tables of the database at dbURL, then
// takes a checkpoint, so that a benchmark that wrote its fixtures first
// does not measure the autovacuum and the writing of dirty pages they
// would set off.
func Settle(t testing.TB, dbURL string, tables ...string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn := connect(t, ctx, u)
	defer conn.Close(ctx)
	for _, table := range tables {
		if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{table}.Sanitize()); err != nil {
			t.Fatalf("pgtest: vacuum %s: %v", table, err)
		}
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Fatalf("pgtest: checkpoint: %v", err)
	}
}

// CPUMeter measures the CPU time of the test server's processes from
// StartCPU to Stop: the whole server's (as CPU), and that of the
// backends serving one database alone, which other tests' and other
// clients' work on the same server does not disturb.
type CPUMeter struct {
	pid    int
	dbName string
	start  int64 // the server's ticks at the start
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	base   map[int]int64 // a database backend's ticks when first seen at the start
	last   map[int]int64 // its ticks when last seen
	member map[int]bool  // the children that serve the database
}

// sampleEvery is how often a CPUMeter reads the database's backends, so
// that a backend that exits meanwhile (its CPU then joins the
// postmaster's, unattributed) is missed by at most this much of its work.
const sampleEvery = 20 * time.Millisecond

// StartCPU starts measuring the CPU of the server and of the backends of
// the database at dbURL (found by their process titles, "postgres: …
// user database host(port) …"). It returns nil when the server is not a
// process of this machine.
func StartCPU(t testing.TB, dbURL string) *CPUMeter {
	t.Helper()
	pid, err := postmasterPID(t)
	if err != nil {
		return nil
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	m := &CPUMeter{pid: pid, dbName: strings.TrimPrefix(u.Path, "/"), stop: make(chan struct{}), done: make(chan struct{}),
		base: map[int]int64{}, last: map[int]int64{}, member: map[int]bool{}}
	if m.start, err = treeTicks(pid); err != nil {
		return nil
	}
	m.sample(true)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
				m.sample(false)
			}
		}
	}()
	return m
}

// sample reads the ticks of the database's backends.
func (m *CPUMeter) sample(first bool) {
	kids, err := children(m.pid)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, child := range kids {
		if !m.member[child] {
			// Read again at every sample until it names the database: a
			// backend just forked has not read its startup packet yet.
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
			if err != nil || !slices.Contains(strings.Fields(strings.ReplaceAll(string(b), "\x00", " ")), m.dbName) {
				continue
			}
			m.member[child] = true
		}
		st, err := readStat(child)
		if err != nil {
			continue
		}
		if first {
			m.base[child] = st.ticks
		}
		m.last[child] = st.ticks
	}
}

// Stop ends the measurement and returns the CPU time of the database's
// backends and of the whole server since StartCPU.
func (m *CPUMeter) Stop() (database, server time.Duration) {
	close(m.stop)
	<-m.done
	m.sample(false)
	end, _ := treeTicks(m.pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	var db int64
	for pid, last := range m.last {
		db += last - m.base[pid]
	}
	return time.Duration(db) * time.Second / userHZ, time.Duration(end-m.start) * time.Second / userHZ
}

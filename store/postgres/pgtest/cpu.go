package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
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

// treeTicks sums the CPU ticks of pid and of its children. The
// postmaster is read first: a backend reaped between the reads is missed
// by this sample (a tick or so).
func treeTicks(pid int) (int64, error) {
	root, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	ticks := root.ticks
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		st, err := readStat(child)
		if err != nil || st.ppid != pid {
			continue // exited since the listing, or not the server's
		}
		ticks += st.ticks
	}
	return ticks, nil
}

// Settle vacuums and analyzes the tables of the database at dbURL, so that
// a benchmark that wrote its fixtures first does not measure the
// autovacuum they would set off.
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
}

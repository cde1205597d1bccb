package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hookd/hookd/internal/outbox"
	"github.com/hookd/hookd/internal/startstop"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// defaultBroadcastWindow and defaultBroadcastBytes bound the newest
// notifications a Broadcaster keeps for its streams, by count and by the
// bytes of their customers' states: a stream that falls further behind
// reads the store itself until it catches up.
const (
	defaultBroadcastWindow = 4096
	defaultBroadcastBytes  = 32 << 20
)

// errBroadcasterStopped ends the streams that follow a Broadcaster when it
// stops.
var errBroadcasterStopped = errors.New("notification broadcaster stopped")

// Broadcaster is the one reader of the outbox that every Subscribe stream
// of a process shares: it tails the store from the newest final
// notification at Start (polling, and reading at once when its Wakeup
// fires), and keeps a window of the newest notifications it read, in
// commit order, for streams to take from. Idle streams then cost nothing
// but a goroutine parked on a channel, whatever their number.
//
// The window holds every notification after its base position, with no
// gap, each numbered by an ordinal that increases in commit order. A
// stream whose cursor is the base or in the window continues from it
// without reading the store; any other stream first reads the store
// itself from its cursor and then joins (see Broadcaster.settle). A stream
// the window has moved past goes back to reading the store from its
// cursor, so a slow stream never holds up the Broadcaster or the others.
type Broadcaster struct {
	store  store.Store
	wakeup *Wakeup
	poll   time.Duration
	window int   // at most this many entries in ring…
	bytes  int64 // …and at most this many bytes of their states (at least one entry is kept)
	log    *slog.Logger
	kick   chan struct{}       // a stream asks for a read now; buffered 1
	done   chan struct{}       // closed by Stop
	lag    func(time.Duration) // observes each Send's read lag (opsmetrics.go); set before Start

	group    startstop.Group // the reader
	stopOnce sync.Once       // closes done

	mu         sync.Mutex // guards the fields below
	running    bool
	base       uint64            // the ordinal of the position just before ring[0]
	baseCursor string            // the cursor of that position
	ring       []entry           // ordinals base+1 … base+len(ring), oldest first; never modified in place
	ringBytes  int64             // the sum of ring's entries' sizes
	index      map[string]uint64 // cursor → ordinal, for ring's entries
	reads      uint64            // the number of reads started
	settledAt  uint64            // the number of the latest read that found nothing more to read
	grew       chan struct{}     // closed and replaced when ring gets new entries
	settled    chan struct{}     // closed and replaced when settledAt moves
}

// entry is one notification in a Broadcaster's window. msg is shared by
// every stream that sends it and must not be modified (it holds the
// notification in wire format, outbox.Message: it is for sending, its
// fields read empty); err is set instead when the stored row does not
// decode.
type entry struct {
	ord        uint64
	size       int64 // the bytes of the customer's state, what the window mostly holds
	cursor     string
	customerID string
	msg        *hookdv1.Notification
	err        error
	woke       time.Time // the wake-up that led to its read, or the read's start (opsmetrics.go)
}

// NewBroadcaster returns a Broadcaster that reads st after wakeup fires or
// poll has passed. It does nothing until Start.
func NewBroadcaster(st store.Store, wakeup *Wakeup, poll time.Duration, log *slog.Logger) *Broadcaster {
	return &Broadcaster{
		store: st, wakeup: wakeup, poll: poll, window: defaultBroadcastWindow, bytes: defaultBroadcastBytes, log: log,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		index: map[string]uint64{}, grew: make(chan struct{}), settled: make(chan struct{}),
	}
}

// Start fixes the Broadcaster's base at the store's newest final
// notification and starts its reader, which runs until Stop: not until
// ctx is done, so that the streams a graceful shutdown lets finish keep
// being served. It follows internal/startstop: a second Start, or one
// after Stop, is an error.
func (b *Broadcaster) Start(ctx context.Context) error {
	c, err := b.store.LatestCursor(ctx)
	if err != nil {
		return err
	}
	if err := b.group.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("notification broadcaster: %w", err)
	}
	b.mu.Lock()
	// Stop stops the group before it clears running: if it has not yet,
	// it will clear what is set here.
	if b.group.Running() {
		b.baseCursor, b.running = c, true
	}
	b.mu.Unlock()
	return b.group.Go(func(ctx context.Context) { b.run(ctx, c) })
}

// Stop stops the reader and waits for it; the streams that follow the
// Broadcaster then end with UNAVAILABLE. Safe to call twice and before
// Start.
func (b *Broadcaster) Stop() {
	b.group.Stop()
	b.stopOnce.Do(func() {
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
		close(b.done)
	})
}

// following reports whether streams can follow the Broadcaster: it was
// started and not stopped.
func (b *Broadcaster) following() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

func (b *Broadcaster) run(ctx context.Context, cursor string) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failing := false
	var woke time.Time // the wake-up the next read answers (zero: none)
	for {
		// Take the wake-up channel before reading, so a commit that lands
		// after the read still wakes the reader.
		gen := b.wakeup.gen()
		wake := gen.ch
		if woke.IsZero() {
			woke = time.Now()
		}
		b.mu.Lock()
		b.reads++
		n := b.reads
		b.mu.Unlock()
		notes, err := b.store.ReadNotifications(ctx, cursor, "", readBatch)
		wait := b.poll
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				b.log.WarnContext(ctx, "notification broadcaster cannot read the outbox; retrying", "err", err)
			}
			failing, wait = true, max(b.poll, time.Second)
		default:
			if failing {
				b.log.InfoContext(ctx, "notification broadcaster reads the outbox again")
			}
			failing = false
			if len(notes) > 0 {
				cursor = notes[len(notes)-1].Cursor
			}
			b.append(notes, n, len(notes) < readBatch, woke)
			if len(notes) == readBatch {
				continue
			}
		}
		woke = time.Time{}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-wake:
			woke = gen.at
		case <-b.kick:
		case <-timer.C:
		}
		timer.Stop() // since Go 1.23, Stop leaves no stale tick to drain
	}
}

// append adds what read number n returned to the window, trims the window,
// and wakes the streams waiting for either.
func (b *Broadcaster) append(notes []store.Notification, n uint64, caughtUp bool, woke time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, note := range notes {
		e := entry{ord: b.base + uint64(len(b.ring)) + 1, size: int64(len(note.Customer)), cursor: note.Cursor, customerID: note.CustomerID, woke: woke}
		e.msg, e.err = outbox.Message(note)
		b.ring = append(b.ring, e)
		b.ringBytes += e.size
		b.index[e.cursor] = e.ord
	}
	// Trim in steps of a quarter window, so that the copy below is paid
	// once per many reads, not on each.
	if len(b.ring) > b.window+b.window/4 || b.ringBytes > b.bytes {
		over := max(len(b.ring)-b.window, 0)
		bytes := b.ringBytes
		for _, e := range b.ring[:over] {
			bytes -= e.size
		}
		for over < len(b.ring)-1 && bytes > b.bytes*3/4 {
			bytes -= b.ring[over].size
			over++
		}
		if over > 0 {
			for _, e := range b.ring[:over] {
				delete(b.index, e.cursor)
			}
			last := b.ring[over-1]
			b.base, b.baseCursor, b.ringBytes = last.ord, last.cursor, bytes
			// A copy, so that the trimmed entries' messages can be
			// collected (streams may still hold views of the old array).
			b.ring = append([]entry(nil), b.ring[over:]...)
		}
	}
	if len(notes) > 0 {
		close(b.grew)
		b.grew = make(chan struct{})
	}
	if caughtUp {
		b.settledAt = n
		close(b.settled)
		b.settled = make(chan struct{})
	}
}

// lookup returns the ordinal of cursor if the window continues from it.
// b.mu must be held.
func (b *Broadcaster) lookup(cursor string) (uint64, bool) {
	if cursor == b.baseCursor {
		return b.base, true
	}
	ord, ok := b.index[cursor]
	return ord, ok
}

// join returns the ordinal a stream at cursor continues from, if the
// window holds everything after cursor.
func (b *Broadcaster) join(cursor string) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lookup(cursor)
}

// head returns the ordinal of the newest notification in the window.
func (b *Broadcaster) head() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.base + uint64(len(b.ring))
}

// settle is how a stream that read the store itself joins: it has sent
// everything of its filter up to the final position its last read saw (a
// read that returned less than it asked for), cursor is the last it sent
// (or where it started), and h0 is the head it took before that read.
// settle returns the ordinal to continue from, or false when the window
// has moved past it (read the store again).
//
// If the window holds cursor, the stream continues from it. Otherwise
// settle waits until a read of the Broadcaster that started after the
// stream's read has caught up: that read saw at least everything the
// stream's read saw (a final position stays final), so cursor, which is not
// in the window, lies at or before its base, and therefore at or before
// h0. And the stream's read, having started after h0 was read and found
// nothing more, sent everything of its filter up to h0 and beyond: it
// continues from h0 — if the window still starts at or before h0.
func (b *Broadcaster) settle(ctx context.Context, cursor string, h0 uint64) (uint64, bool, error) {
	b.mu.Lock()
	after := b.reads
	b.mu.Unlock()
	b.poke()
	for {
		b.mu.Lock()
		if ord, ok := b.lookup(cursor); ok {
			b.mu.Unlock()
			return ord, true, nil
		}
		if b.settledAt > after {
			ok := h0 >= b.base
			b.mu.Unlock()
			return h0, ok, nil
		}
		settled := b.settled
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-b.done:
			return 0, false, errBroadcasterStopped
		case <-settled:
		}
	}
}

// since returns the window's entries after ordinal next (a view: do not
// modify it), and a channel closed when more arrive. ok is false when the
// window has moved past next.
func (b *Broadcaster) since(next uint64) (entries []entry, grew <-chan struct{}, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if next < b.base {
		return nil, nil, false
	}
	return b.ring[next-b.base:], b.grew, true
}

// poke asks the reader to read now rather than at its next poll.
func (b *Broadcaster) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

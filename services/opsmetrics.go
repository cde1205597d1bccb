package services

import "time"

// Subscribers returns the NotificationService/Subscribe streams open now.
func (r *Registered) Subscribers() int64 { return r.notify.streams.Load() }

// OnSendLag sets f to observe, for every notification a Subscribe stream
// sends from the Broadcaster's window, the time from the wake-up that led
// the Broadcaster to read it (Wakeup.Notify: a commit on this member, or
// a PostgreSQL NOTIFY from another) to the stream's Send; for a
// notification found by polling, from the start of the read that found
// it. Notifications a stream reads from the store itself (catching up on
// history) are not observed. Call it before Start.
func (b *Broadcaster) OnSendLag(f func(time.Duration)) { b.lag = f }

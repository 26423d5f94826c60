package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// Default backoff between reconnection attempts.
const (
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 5 * time.Second
)

// backoff computes the waits between attempts: exponential from min to max,
// each drawn at random from its upper half so that clients do not retry in
// step.
type backoff struct {
	min, max time.Duration
	n        int // attempts since the last reset
}

// next returns the wait before the next attempt.
func (b *backoff) next() time.Duration {
	d := b.max
	if b.n < 62 && b.min<<b.n > 0 && b.min<<b.n < b.max {
		d = b.min << b.n
		b.n++
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// reset makes the next wait the shortest again; call it after progress.
func (b *backoff) reset() { b.n = 0 }

// wait sleeps for the next wait, or until ctx ends, then returning the cause
// of ctx.
func (b *backoff) wait(ctx context.Context) error {
	return sleep(ctx, b.next())
}

// sleep waits for d, or until ctx ends, then returning the cause of ctx.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// retry calls attempt until it returns nil, an error that is not transient,
// or ctx ends (then returning the cause of ctx), waiting with backoff between
// attempts. attempt resets b when it made progress, so that a stream that
// broke after a long life is reopened at once. what names the attempt in
// the log.
func (c *Client) retry(ctx context.Context, what string, attempt func(b *backoff) error) error {
	b := c.newBackoff()
	for {
		err := attempt(b)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case !IsTransient(err):
			return err
		}
		d := max(b.next(), RetryDelay(err))
		c.opts.logger.DebugContext(ctx, "zkcoord: retrying", "what", what, "in", d, "err", err)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoffGrowsWithinBoundsAndResets(t *testing.T) {
	b := backoff{min: 10 * time.Millisecond, max: 100 * time.Millisecond}
	for i, ceil := range []time.Duration{10, 20, 40, 80, 100, 100, 100} {
		ceil *= time.Millisecond
		if d := b.next(); d < ceil/2 || d > ceil {
			t.Fatalf("wait %d = %v, want within [%v, %v]", i, d, ceil/2, ceil)
		}
	}
	b.reset()
	if d := b.next(); d > 10*time.Millisecond {
		t.Fatalf("wait after reset = %v", d)
	}
}

func TestBackoffDoesNotOverflow(t *testing.T) {
	b := backoff{min: time.Hour, max: time.Duration(1<<63 - 1)}
	for range 100 {
		if d := b.next(); d <= 0 {
			t.Fatalf("wait %v", d)
		}
	}
}

func TestWithBackoffNormalizes(t *testing.T) {
	for _, tc := range []struct{ min, max, wantMin, wantMax time.Duration }{
		{time.Millisecond, time.Second, time.Millisecond, time.Second},
		{0, time.Second, defaultBackoffMin, time.Second},
		{time.Second, time.Millisecond, time.Second, time.Second},
	} {
		o := defaultOptions()
		WithBackoff(tc.min, tc.max)(&o)
		if o.backoffMin != tc.wantMin || o.backoffMax != tc.wantMax {
			t.Errorf("WithBackoff(%v, %v) = %v, %v", tc.min, tc.max, o.backoffMin, o.backoffMax)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrClosed)
	if err := sleep(ctx, time.Hour); !errors.Is(err, ErrClosed) {
		t.Fatalf("sleep = %v, want the context's cause", err)
	}
}

func TestRetryStopsOnPermanentErrors(t *testing.T) {
	c := NewFromConn(nil, WithBackoff(time.Microsecond, time.Microsecond))
	defer c.Close()
	calls := 0
	permanent := errors.New("permanent")
	err := c.retry(context.Background(), "test", func(*backoff) error {
		calls++
		if calls < 3 {
			return errStreamEnded
		}
		return permanent
	})
	if !errors.Is(err, permanent) || calls != 3 {
		t.Fatalf("retry = %v after %d calls", err, calls)
	}
}

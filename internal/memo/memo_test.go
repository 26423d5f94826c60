package memo

import (
	"testing"
	"time"
)

func TestRemoved(t *testing.T) {
	r := NewRemoved(time.Hour)
	r.Add("a")
	if !r.Has("a") || r.Has("b") {
		t.Fatal("Has after Add(a)")
	}
	r.Forget("a")
	if r.Has("a") {
		t.Fatal("Has after Forget")
	}
	short := NewRemoved(0)
	short.Add("old")
	short.Add("new") // prunes "old": older than the memory
	if short.Has("old") {
		t.Fatal("a key older than the memory is remembered")
	}
}

// TestRemovedReAdded: a key added again is remembered for the memory
// from its last Add, though its first Add expires; one forgotten is not
// brought back; Add keeps only what it may still need.
func TestRemovedReAdded(t *testing.T) {
	clock := time.Unix(0, 0)
	r := NewRemoved(time.Minute)
	r.now = func() time.Time { return clock }
	r.Add("k")
	r.Add("gone")
	r.Forget("gone")
	clock = clock.Add(40 * time.Second)
	r.Add("k") // again
	clock = clock.Add(40 * time.Second)
	r.Add("x") // the first Add of k, and gone's, expire here
	if !r.Has("k") || r.Has("gone") || !r.Has("x") {
		t.Fatalf("after 80 s: k %v (want true), gone %v (want false), x %v", r.Has("k"), r.Has("gone"), r.Has("x"))
	}
	clock = clock.Add(41 * time.Second)
	r.Add("y") // k's second Add expires
	if r.Has("k") || len(r.order) != 2 || len(r.at) != 2 {
		t.Fatalf("after 121 s: k %v, %d in order, %d remembered; want false, 2, 2", r.Has("k"), len(r.order), len(r.at))
	}
	clock = clock.Add(61 * time.Second) // no Add since y: Has alone tells it expired
	if r.Has("y") {
		t.Fatal("a key older than the memory is remembered before the next Add")
	}
}

func TestWakers(t *testing.T) {
	var w Wakers
	a, stopA := w.Listen("k")
	b, stopB := w.Listen("k")
	other, stopOther := w.Listen("other")
	defer stopOther()
	w.Wake("k")
	w.Wake("k") // coalesces
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Fatal("a listener was not woken")
		}
	}
	select {
	case <-other:
		t.Fatal("another key's listener was woken")
	default:
	}
	stopA()
	stopB()
	if len(w.by) != 1 {
		t.Fatalf("cancelled listeners left: %v", w.by)
	}
}

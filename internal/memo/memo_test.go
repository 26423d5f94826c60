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

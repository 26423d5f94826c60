package client

import (
	"context"
	"sync"
	"time"
)

// term is what a Leadership and a Lock share: a context that ends with the
// term (or hold), and whether it is in jeopardy. Its context ends, with
// ErrJeopardy, when a jeopardy deadline passes unconfirmed.
type term struct {
	ctx    context.Context // ends with the term
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	state  termState // guarded by mu
}

// TermState says whether a term (or a lock's hold) is in jeopardy.
type TermState struct {
	// Jeopardy is true when the term may end at Deadline: the gateway lost
	// ZooKeeper, or the client lost the gateway. Stop work that is not
	// fenced by then; the term goes on if the gateway confirms it first.
	Jeopardy bool
	// Deadline is when the term in jeopardy ends unless confirmed.
	Deadline time.Time
	// Changed is closed at the next change: jeopardy begins or clears, or
	// the term ends.
	Changed <-chan struct{}
}

type termState struct {
	deadline time.Time   // zero when not in jeopardy
	timer    *time.Timer // ends the term at deadline
	changed  chan struct{}
}

// init starts the term, with a context derived from parent.
func (t *term) init(parent context.Context) {
	t.state.changed = make(chan struct{})
	t.ctx, t.cancel = context.WithCancelCause(parent)
}

// State reports whether the term is in jeopardy, with a channel closed at
// the next change.
func (t *term) State() TermState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TermState{Jeopardy: !t.state.deadline.IsZero(), Deadline: t.state.deadline, Changed: t.state.changed}
}

// jeopardy puts the term in jeopardy until deadline, ending it then, or
// takes it out of jeopardy when deadline is zero.
func (t *term) jeopardy(deadline time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state.deadline.Equal(deadline) || t.ctx.Err() != nil {
		return
	}
	if t.state.timer != nil {
		t.state.timer.Stop()
		t.state.timer = nil
	}
	t.state.deadline = deadline
	if !deadline.IsZero() {
		t.state.timer = time.AfterFunc(time.Until(deadline), func() { t.cancel(ErrJeopardy) })
	}
	close(t.state.changed)
	t.state.changed = make(chan struct{})
}

// end ends the term with cause, unless it has ended already (the first
// cause stays); the term's stream, opened with its context, closes.
func (t *term) end(cause error) {
	t.cancel(cause)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state.timer != nil {
		t.state.timer.Stop()
		t.state.timer = nil
	}
	select {
	case <-t.state.changed:
	default:
		close(t.state.changed)
	}
}

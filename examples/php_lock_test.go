package examples_test

import (
	"path/filepath"
	"syscall"
	"testing"
)

// TestPHPLock runs lockedwrite.php: workers take a lock in turn (the
// Acquire stream, and TryAcquire), write to a store with their fencing
// tokens, which rise; a try of a held lock fails and takes nothing; the
// store refuses a stale token, and with --check a token whose hold ended.
func TestPHPLock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a PHP example against a gateway")
	}
	requirePHP(t)
	lk := unique("stock")
	store := filepath.Join(t.TempDir(), "store.json")
	args := func(id string, more ...string) []string {
		return append([]string{"--lock", lk, "--id", id, "--store", store}, more...)
	}
	out := runPHP(t, 0, "lockedwrite.php", args("a", "--steps", "2", "--check")...)
	ta := match(t, out, `a: holding `+lk+` with token (\d+)`)
	match(t, out, `a: step 2 written with token `+ta[1])
	match(t, out, `a: released `+lk)
	out = runPHP(t, 0, "lockedwrite.php", args("b", "--steps", "1", "--try", "--check")...)
	tb := match(t, out, `b: holding `+lk+` with token (\d+)`)
	increasing(t, [][]string{ta, tb})

	// A holder that waits for SIGTERM; a try meanwhile fails, and a second
	// worker queues behind it.
	c := startPHP(t, "lockedwrite.php", args("c", "--steps", "0")...)
	tc := c.expect(`c: holding ` + lk + ` with token (\d+)`)
	out = runPHP(t, 1, "lockedwrite.php", args("d", "--try")...)
	match(t, out, `d: `+lk+` is held by x_[0-9a-f]{32}_\d{10} \(token `+tc[1]+`\)`)
	e := startPHP(t, "lockedwrite.php", args("e", "--steps", "1")...)
	e.expect(`e: waiting for ` + lk + `, 1 ahead`)
	c.signal(syscall.SIGTERM)
	c.expect(`c: released ` + lk)
	c.wait(0)
	te := e.expect(`e: holding ` + lk + ` with token (\d+)`)
	increasing(t, [][]string{tb, tc, te})
	e.expect(`e: step 1 written with token ` + te[1])
	e.wait(0)

	// The store refuses a paused holder's write: a newer token was
	// admitted; with --check, e's own token once its hold has ended.
	out = runPHP(t, 1, "lockedwrite.php", args("c", "--stale-token", tc[1])...)
	match(t, out, `c: refused: stale token `+tc[1]+`: the store admitted `+te[1])
	out = runPHP(t, 1, "lockedwrite.php", args("e", "--stale-token", te[1], "--check")...)
	match(t, out, `e: refused: token `+te[1]+` is no longer current`)
}

package examples_test

import (
	"syscall"
	"testing"
)

// TestPHPSemaphore runs examples/php/semaphore.php: two workers hold the
// two permits; a third waits, first in line; a --try finds none free and
// queues nothing; when the first stops, the third holds (a higher token),
// works and releases; then a --try takes a free permit, works and
// releases it.
func TestPHPSemaphore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the PHP example against a gateway")
	}
	requirePHP(t)
	sem := unique("reports")
	args := func(id string, more ...string) []string {
		return append([]string{"--semaphore", sem, "--permits", "2", "--id", id, "--step", "100ms"}, more...)
	}
	w1 := startPHP(t, "semaphore.php", args("w1", "--steps", "0")...)
	t1 := w1.expect(`w1: holds a permit of ` + sem + ` \(token (\d+)\)`)
	w2 := startPHP(t, "semaphore.php", args("w2", "--steps", "0")...)
	w2.expect(`w2: holds a permit of ` + sem + ` \(token \d+\)`)
	w3 := startPHP(t, "semaphore.php", args("w3", "--steps", "2")...)
	w3.expect(`w3: waiting for a permit of ` + sem + `, 0 waiter\(s\) ahead`)
	out := runPHP(t, 3, "semaphore.php", args("cron", "--try")...)
	match(t, out, `cron: no permit of `+sem+` free \(2 of 2 held\): skipping`)

	w1.signal(syscall.SIGTERM)
	w1.expect(`w1: stopped, permit released`)
	w1.wait(0)
	t3 := w3.expect(`w3: holds a permit of ` + sem + ` \(token (\d+)\)`)
	increasing(t, [][]string{t1, t3})
	w3.expect(`w3: job step 1/2 with token ` + t3[1])
	w3.expect(`w3: job step 2/2 with token ` + t3[1])
	w3.expect(`w3: job done, permit released`)
	w3.wait(0)

	out = runPHP(t, 0, "semaphore.php", args("cron", "--try", "--steps", "1")...)
	inOrder(t, out, `cron: holds a permit of `+sem+` \(token \d+\)`, `cron: job step 1/1 with token \d+`, `cron: released`)
	w2.signal(syscall.SIGTERM)
	w2.expect(`w2: stopped, permit released`)
	w2.wait(0)
}

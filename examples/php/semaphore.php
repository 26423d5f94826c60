<?php
// semaphore.php: at most N workers run a job at once (a semaphore of N
// permits: Consul's `consul lock -n N`, Curator's InterProcessSemaphoreV2).
// Every worker runs this script with the same --permits; the first sets it.
//
// By default the worker waits its turn on the AcquireSemaphore stream
// (newline-delimited JSON), first come first served, whose own lease
// (--ttl) the gateway keeps while the stream is open: if this process
// dies, its place goes at once. It runs the job in --steps steps while it
// holds the permit, pauses on JEOPARDY, stops on LOST, and closes the
// stream at the end, which gives the permit to the next worker.
//
// --try never waits, for a web request or a cron job that would rather
// skip: one call takes a free permit for a lease made from --ttl, or
// answers at once that none is free (exit 3, nothing queued). The worker
// keeps the lease alive between steps and releases the permit at the end;
// if it dies, the permit goes when the lease lapses.
//
//   php semaphore.php --semaphore reports --permits 2 --id w1 &
//   php semaphore.php --semaphore reports --permits 2 --id w2 &
//   php semaphore.php --semaphore reports --permits 2 --id w3   # waits for w1 or w2
//   php semaphore.php --semaphore reports --permits 2 --id cron --try   # or skips
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

/** Runs the job with a permit from TryAcquireSemaphore; 3 when none is free. */
function tryJob(Zkcoord $zk, array $o, string $sem): int
{
    $id = $o['id'];
    $r = $zk->post("/v1/semaphores/$sem:tryAcquire", ['permits' => $o['permits'], 'value' => $id, 'ttl' => $o['ttl']]);
    if (!($r['acquired'] ?? false)) {
        printf("%s: no permit of %s free (%d of %d held): skipping\n", $id, $o['semaphore'], $r['held'] ?? 0, $o['permits']);
        return 3;
    }
    [$token, $lease] = [$r['token'], $r['leaseId']];
    echo "$id: holds a permit of {$o['semaphore']} (token $token)\n";
    for ($done = 1; $done <= $o['steps']; $done++) {
        usleep((int) (zk_seconds($o['step']) * 1e6));
        echo "$id: job step $done/{$o['steps']} with token $token\n";
        $zk->post('/v1/leases/' . Zkcoord::seg($lease) . ':keepalive'); // the permit lasts as long as the lease
    }
    $zk->post("/v1/semaphores/$sem:release", ['leaseId' => $lease]);
    $zk->delete('/v1/leases/' . Zkcoord::seg($lease));
    echo "$id: released\n";
    return 0;
}

zk_run(['semaphore' => 'reports', 'permits' => 2, 'id' => 'w1', 'steps' => 3, 'step' => '200ms', 'ttl' => '10s',
        'try' => false, 'timeout' => '0s'], function (array $o, Zkcoord $zk): int {
    $sem = Zkcoord::seg($o['semaphore']);
    if ($o['try']) {
        return tryJob($zk, $o, $sem);
    }
    $stopped = zk_stop_signal();
    $id = $o['id'];
    $s = $zk->stream('POST', "/v1/semaphores/$sem:acquire", ['permits' => $o['permits'], 'value' => $id, 'ttl' => $o['ttl']],
        [], zk_seconds($o['timeout']));
    $step = zk_seconds($o['step']);
    [$token, $paused, $done, $lease] = [null, false, 0, null];
    while (true) {
        $m = $s->next($token !== null && !$paused ? $step : 0.2);
        if ($m === false) {
            echo "$id: the stream ended\n";
            return 1;
        }
        if ($m !== null) {
            $lease = $m['leaseId'] ?? $lease; // the stream's own lease
            switch ($m['status']) {
                case 'STATUS_QUEUED':
                    printf("%s: waiting for a permit of %s, %d waiter(s) ahead\n", $id, $o['semaphore'], $m['position'] ?? 0);
                    break;
                case 'STATUS_HELD':
                    echo $paused ? "$id: ZooKeeper is back, the permit goes on (token {$m['token']})\n"
                        : "$id: holds a permit of {$o['semaphore']} (token {$m['token']})\n";
                    [$token, $paused] = [$m['token'], false];
                    break;
                case 'STATUS_JEOPARDY':
                    echo "$id: jeopardy, the permit may end at " . ($m['jeopardyDeadline'] ?? 'its lease\'s end') . ": pausing the job\n";
                    $paused = true;
                    break;
                case 'STATUS_LOST':
                case 'STATUS_RELEASED':
                    echo "$id: permit gone ({$m['status']}): stopping the job\n";
                    return 3;
            }
            continue;
        }
        if ($stopped() && $token === null) {
            $s->close(); // gives the place in the queue up
            echo "$id: stopped while waiting; place given up\n";
            return 0;
        }
        if ($token === null || $paused) {
            continue;
        }
        if (!$stopped() && ($o['steps'] === 0 || $done < $o['steps'])) {
            $done++;
            echo "$id: job step " . ($o['steps'] ? "$done/{$o['steps']}" : $done) . " with token $token\n";
            continue;
        }
        // Release, and read the stream to its RELEASED: the permit is free
        // when this says so. (Closing the stream releases too, but only once
        // the gateway notices the connection gone: a --try just after could
        // still find every permit held.)
        if ($lease !== null) {
            $zk->post("/v1/semaphores/$sem:release", ['leaseId' => $lease]);
            while (($m = $s->next(5)) !== null && $m !== false && $m['status'] !== 'STATUS_RELEASED') {
            }
        }
        $s->close(); // the stream's end ends its lease too
        echo "$id: " . ($stopped() ? 'stopped' : 'job done') . ", permit released\n";
        return 0;
    }
});

<?php
// lockedwrite.php: a worker that writes to a shared store only while it
// holds a lock, and a store that refuses stale writers: the fencing token
// in PHP. The worker takes lock --lock through the AcquireLock stream
// (newline-delimited JSON; it waits its turn, and the stream's own lease
// is released if the process dies), or with --try through TryAcquireLock (one
// call that never waits, under a lease of --ttl; the worker then releases
// with :release). Holding the lock, it writes --steps times, each write
// carrying its fencing token. The store (a JSON file, --store) admits a
// write only if no newer token was admitted before, and, with --check,
// only if the gateway says the token is still current (CheckSequencer).
// --stale-token N writes once with token N, as a paused holder would after
// losing its lock: the store refuses it.
//
//   php lockedwrite.php --lock inventory --id a --steps 3 --store /tmp/stock.json --check
//   php lockedwrite.php --lock inventory --id b --try --store /tmp/stock.json   # fails while a holds it
//   php lockedwrite.php --lock inventory --id a --stale-token 12 --store /tmp/stock.json
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

/**
 * The protected store: admits a write with $token when no higher token was
 * admitted (under an exclusive flock, so two writers cannot interleave),
 * and, when $zk is given, when the gateway says $token is current. Returns
 * null when written, else why it refused.
 */
function store_write(string $file, string $lock, string $token, string $who, string $value, ?Zkcoord $zk): ?string
{
    $f = fopen($file, 'c+');
    flock($f, LOCK_EX);
    try {
        $data = json_decode(stream_get_contents($f) ?: '{}', true) ?: [];
        $highest = $data['highest'] ?? '0';
        if (cmp_tokens($token, $highest) < 0) {
            return "stale token $token: the store admitted $highest";
        }
        if ($zk !== null) {
            $c = $zk->post('/v1/locks/' . Zkcoord::seg($lock) . ':check', ['fencingToken' => $token]);
            if (!$c['current']) {
                return "token $token is no longer current (highest {$c['highestToken']})";
            }
        }
        $data['highest'] = $token;
        $data['writes'][] = ['by' => $who, 'token' => $token, 'value' => $value];
        ftruncate($f, 0);
        rewind($f);
        fwrite($f, json_encode($data));
        return null;
    } finally {
        flock($f, LOCK_UN);
        fclose($f);
    }
}

/** Compares two decimal strings (64-bit tokens arrive as JSON strings). */
function cmp_tokens(string $a, string $b): int
{
    return strlen($a) === strlen($b) ? strcmp($a, $b) <=> 0 : strlen($a) <=> strlen($b);
}

zk_run(['lock' => 'inventory', 'id' => 'worker-1', 'steps' => 3, 'store' => '/tmp/zkcoord-store.json', 'check' => false,
        'try' => false, 'ttl' => '10s', 'stale-token' => '', 'timeout' => '30s'], function (array $o, Zkcoord $zk): int {
    [$id, $lock] = [$o['id'], $o['lock']];
    $l = Zkcoord::seg($lock);
    $check = $o['check'] ? $zk : null;
    if ($o['stale-token'] !== '') {
        $why = store_write($o['store'], $lock, $o['stale-token'], $id, 'late', $check);
        echo $why === null ? "$id: written with token {$o['stale-token']}\n" : "$id: refused: $why\n";
        return $why === null ? 0 : 1;
    }
    $stopped = zk_stop_signal();
    $stream = null;
    if ($o['try']) {
        $r = $zk->post("/v1/locks/$l:tryAcquire", ['ttl' => $o['ttl']]);
        if (!$r['acquired']) {
            $h = $r['holders'][0] ?? null;
            echo "$id: $lock is held" . ($h ? " by {$h['node']} (token {$h['fencingToken']})" : '') . "\n";
            return 1;
        }
        [$token, $lease, $hold] = [$r['fencingToken'], $r['leaseId'], $r['hold']];
    } else {
        $stream = $zk->stream('POST', "/v1/locks/$l:acquire", ['ttl' => $o['ttl']], [], zk_seconds($o['timeout']));
        [$token, $lease, $hold] = [null, null, null];
        while ($token === null) {
            $m = $stream->next(0.2);
            if ($m === false) {
                echo "$id: the acquire stream ended\n";
                return 1;
            }
            if ($stopped()) {
                echo "$id: stopped while waiting\n";
                return 0; // the stream closes: the gateway drops our place
            }
            $lease = $m['leaseId'] ?? $lease; // the stream's own lease, in its first message
            if ($m !== null && $m['status'] === 'STATUS_QUEUED') {
                echo "$id: waiting for $lock, {$m['position']} ahead\n";
            } elseif ($m !== null && $m['status'] === 'STATUS_HELD') {
                [$token, $hold] = [$m['fencingToken'], $m['hold'] ?? null];
            }
        }
    }
    echo "$id: holding $lock with token $token\n";
    for ($i = 1; ($o['steps'] === 0 || $i <= $o['steps']) && !$stopped(); $i++) {
        while ($stream !== null && ($m = $stream->next(0)) !== null) {
            if ($m === false || in_array($m['status'], ['STATUS_LOST', 'STATUS_RELEASED', 'STATUS_JEOPARDY'], true)) {
                echo "$id: the hold is no longer sure (" . ($m['status'] ?? 'stream ended') . "): stopping\n";
                return 3;
            }
        }
        $why = store_write($o['store'], $lock, $token, $id, "step $i", $check);
        echo $why === null ? "$id: step $i written with token $token\n" : "$id: step $i refused: $why\n";
        usleep(100000);
    }
    if ($stream !== null) {
        // Release, and read the stream to its RELEASED: the lock is free
        // when this says so. (Closing the stream releases too, but only once
        // the gateway notices the connection gone: another worker could
        // still find the lock held just after this one said "released".)
        if ($lease !== null && $hold !== null) {
            $zk->post("/v1/locks/$l:release", ['leaseId' => $lease, 'hold' => $hold]);
            while (($m = $stream->next(5)) !== null && $m !== false && $m['status'] !== 'STATUS_RELEASED') {
            }
        }
        $stream->close(); // the stream's end ends its lease too
    } else {
        $zk->post("/v1/locks/$l:release", ['leaseId' => $lease, 'hold' => $hold]);
        $zk->delete("/v1/leases/$lease");
    }
    echo "$id: released $lock\n";
    return 0;
});

<?php
// readyornot.php: the talk's eighth example: wait until there are enough
// resources to run a workflow (a barrier, in ZooKeeper a watch on a node
// that does not exist yet). Two forms:
//
//   --group G --min N     wait until registry group G has N members: long-polls
//                         of the group, each answered as soon as it changes
//                         (--stream: the AwaitGroup stream instead)
//   --barrier B --parties N --id P
//                         join barrier B as participant P (one call, answered
//                         at once) and long-poll it until N have joined: the
//                         last to arrive releases them all; then leave it so
//                         the name can be used again (--stream: the
//                         AwaitBarrier stream instead of join and polls)
//
// Given both, it waits for the group, then the barrier. The participation
// belongs to a lease (--ttl) this process keeps alive while it waits and
// revokes at the end; if the process dies, it lapses after the TTL. Exits 1
// when --timeout passes first.
//
//   php readyornot.php --group workers --min 3
//   php register2.php --group workers --id w1   # ... w2, w3: then it is ready
//   php readyornot.php --barrier start --parties 2 --id p-1 & php readyornot.php --barrier start --parties 2 --id p-2
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

/**
 * Waits until the group has --min members, printing its size as it
 * changes: with long-polls of the group (GET /v1/groups/G?afterRevision=R&wait=..,
 * answered as soon as it changes), or --stream, the AwaitGroup stream.
 * False when $deadline passes first.
 */
function awaitGroup(Zkcoord $zk, array $o, float $deadline): bool
{
    $g = Zkcoord::seg($o['group']);
    $show = fn (int $n, string $rev) => printf("group %s: %d of %d members (revision %s)\n", $o['group'], $n, $o['min'], $rev);
    if ($o['stream']) {
        $s = $zk->stream('GET', "/v1/groups/$g:await", null, ['minMembers' => $o['min']]);
        while (is_array($m = $s->next(max(0.0, $deadline - microtime(true))))) {
            $show($m['members'] ?? 0, $m['revision']);
            if ($m['ready'] ?? false) {
                echo "enough resources: the workflow starts\n";
                return true;
            }
        }
        return false;
    }
    [$rev, $last] = ['0', -1];
    while (($left = $deadline - microtime(true)) > 0) {
        $r = $zk->poll("/v1/groups/$g", $rev, min(zk_seconds($o['wait']), $left));
        $rev = $r['revision'];
        $n = count($r['members'] ?? []);
        if ($n !== $last) {
            $show($last = $n, $rev);
        }
        if ($n >= $o['min']) {
            echo "enough resources: the workflow starts\n";
            return true;
        }
    }
    return false;
}

zk_run(['group' => '', 'min' => 3, 'barrier' => '', 'parties' => 3, 'id' => 'p-1', 'ttl' => '10s',
        'stream' => false, 'wait' => '30s', 'timeout' => '60s'],
    function (array $o, Zkcoord $zk): int {
        if ($o['group'] === '' && $o['barrier'] === '') {
            throw new InvalidArgumentException('give --group, --barrier or both');
        }
        $deadline = microtime(true) + zk_seconds($o['timeout']);
        if ($o['group'] !== '' && !awaitGroup($zk, $o, $deadline)) {
            echo "group {$o['group']}: not ready after {$o['timeout']}\n";
            return 1;
        }
        if ($o['barrier'] === '') {
            return 0;
        }

        [$b, $id] = [Zkcoord::seg($o['barrier']), $o['id']];
        $stopped = zk_stop_signal();
        $keepalive = zk_seconds($o['ttl']) / 3;
        if ($o['stream']) { // the AwaitBarrier stream: every arrival, the release
            $lease = $zk->post('/v1/leases', ['ttl' => $o['ttl']])['leaseId'];
            $s = $zk->stream('POST', "/v1/barriers/$b:await", ['threshold' => $o['parties'], 'participantId' => $id, 'leaseId' => $lease]);
            $next = function (float $wait) use ($s): ?array {
                $m = $s->next($wait);
                if ($m === false) {
                    throw new ZkcoordError(ZkcoordError::UNAVAILABLE, 'the barrier stream ended before the release');
                }
                return $m;
            };
        } else { // join, answered at once; then long-polls of the barrier
            $s = null;
            $joined = $zk->put("/v1/barriers/$b/participants/" . Zkcoord::seg($id), ['threshold' => $o['parties'], 'ttl' => $o['ttl']]);
            [$lease, $rev] = [$joined['leaseId'], $joined['revision']];
            $next = function (float $wait) use ($zk, $b, $o, &$joined, &$rev): ?array {
                if ($joined !== null) {
                    [$m, $joined] = [$joined, null];
                    return $m;
                }
                $m = $zk->poll("/v1/barriers/$b", $rev, min($wait, zk_seconds($o['wait'])));
                if ($m['revision'] === $rev) {
                    return null; // the wait ended without a change
                }
                $rev = $m['revision'];
                return $m;
            };
        }
        [$released, $renewed] = [false, microtime(true)];
        while (!$released) {
            if ($stopped() || microtime(true) >= $deadline) {
                echo "$id: " . ($stopped() ? 'stopped' : "not released after {$o['timeout']}") . "; leaving\n";
                break;
            }
            $m = $next(max(0.0, min($keepalive, $deadline - microtime(true))));
            if (microtime(true) - $renewed >= $keepalive) { // the lease must outlive the wait
                $zk->post("/v1/leases/$lease:keepalive");
                $renewed = microtime(true);
            }
            if ($m !== null) {
                printf("%s: barrier %s has %d of %d\n", $id, $o['barrier'], $m['arrived'], $m['threshold']);
                if ($released = $m['released'] ?? false) {
                    echo "$id: released\n";
                }
            }
        }
        try { // before closing the stream: a participant that gives up is withdrawn
            $r = $zk->post("/v1/barriers/$b/participants/" . Zkcoord::seg($id) . ':leave', ['leaseId' => $lease]);
            echo "$id: left (barrier had released: " . json_encode($r['wasReleased'] ?? false) . ")\n";
        } catch (ZkcoordError $e) {
            if ($e->grpcCode !== ZkcoordError::NOT_FOUND) {
                throw $e;
            }
            echo "$id: left (withdrawn already)\n";
        }
        $s?->close();
        $zk->delete("/v1/leases/$lease");
        return $released ? 0 : 1;
    });

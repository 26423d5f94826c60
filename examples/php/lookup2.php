<?php
// lookup2.php: the talk's fourth example: watch a group, rather than one
// node, for changes. ZooKeeper's watches fire once and must be re-armed, so
// a plain client can miss changes; the gateway follows the group for every
// client and keeps its revisions.
//
// By default this is a long-poll loop, the way a PHP process that cannot
// hold a connection watches: each GET /v1/groups/{group}?afterRevision=R&wait=30s
// answers as soon as the group has changed after R (or when the wait ends),
// with the whole group; the script prints what changed. Changes that come
// between two polls show together, at the later revision.
//
// --stream holds a WatchGroup stream instead (newline-delimited JSON): every
// change, at its own revision. One transaction can change several members (a
// lease's end removes all of them): its messages say "more" until the last,
// and a revision is printed once it is whole. A broken stream is resumed
// after the last whole revision.
//
//   php lookup2.php --group web                 # until Ctrl-C
//   php lookup2.php --group web --count 3       # the first state and 2 changes
//   php lookup2.php --group web --stream
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

/** One line: the revision, what made it, the members. */
function show(string $rev, array $events, array $members): void
{
    ksort($members, SORT_STRING);
    sort($events, SORT_STRING);
    printf("revision %s: %s; members [%s]\n", $rev, implode(', ', $events),
        implode(' ', array_map(fn ($id, $m) => "$id={$m['value']}", array_keys($members), $members)));
}

/** Long-polls the group; returns after $count lines, or at $deadline. */
function poll(Zkcoord $zk, string $group, string $wait, int $count, float $deadline): void
{
    [$rev, $members, $printed] = ['0', null, 0];
    while (microtime(true) < $deadline) {
        $r = $zk->poll('/v1/groups/' . Zkcoord::seg($group), $rev, zk_seconds($wait));
        $now = array_column($r['members'] ?? [], null, 'id');
        if ($members !== null && $r['revision'] === $rev) {
            continue; // the wait ended without a change
        }
        if ($members === null || (int) $r['revision'] < (int) $rev) {
            $events = [$members === null ? 'snapshot' : "snapshot (reset: revision $rev is ahead of the gateway)"];
        } else {
            $events = [];
            foreach (array_unique(array_merge(array_keys($members), array_keys($now))) as $id) {
                $was = $members[$id] ?? null;
                $is = $now[$id] ?? null;
                if ($was === null) {
                    $events[$id] = "joined $id";
                } elseif ($is === null) {
                    $events[$id] = "left $id";
                } elseif ($was['modRevision'] !== $is['modRevision']) {
                    $events[$id] = "updated $id";
                }
            }
            if (!$events) {
                $events = ['no change of members'];
            }
        }
        [$rev, $members] = [$r['revision'], $now];
        show($rev, $events, $members);
        if (++$printed === $count) {
            return;
        }
    }
}

/** Follows the group's WatchGroup stream; returns after $count lines, or at $deadline. */
function stream(Zkcoord $zk, string $group, int $count, float $deadline): void
{
    $path = '/v1/groups/' . Zkcoord::seg($group) . ':watch';
    [$members, $rev, $events, $printed] = [[], '0', [], 0]; // as of $rev, the last whole revision
    $s = $zk->stream('GET', $path);
    while (($left = $deadline - microtime(true)) > 0) {
        try {
            $m = $s->next(min($left, 60.0));
        } catch (ZkcoordError $e) {
            if ($e->grpcCode !== ZkcoordError::UNAVAILABLE || $rev === '0') {
                throw $e;
            }
            $m = false; // the gateway went away: resume below
        }
        if ($m === null) {
            continue;
        }
        if ($m === false) {
            echo "stream ended; resuming after revision $rev\n";
            [$events, $s] = [[], $zk->stream('GET', $path, null, ['startRevision' => $rev])];
            continue;
        }
        $type = strtolower(substr($m['type'], strlen('TYPE_')));
        if ($type === 'snapshot') {
            $members = array_column($m['members'], null, 'id');
            $events = [$m['resync'] ? 'snapshot (resync)' : 'snapshot'];
        } else {
            $id = $m['member']['id'];
            if ($type === 'left') {
                unset($members[$id]);
            } else {
                $members[$id] = $m['member'];
            }
            $events[] = "$type $id";
            if ($m['more']) {
                continue; // more messages of this revision follow
            }
        }
        $rev = $m['revision'];
        show($rev, $events, $members);
        $events = [];
        if (++$printed === $count) {
            return;
        }
    }
}

zk_run(['group' => 'web', 'count' => 0, 'wait' => '30s', 'stream' => false, 'timeout' => '0s'], function (array $o, Zkcoord $zk): int {
    $deadline = zk_seconds($o['timeout']) > 0 ? microtime(true) + zk_seconds($o['timeout']) : INF;
    if ($o['stream']) {
        stream($zk, $o['group'], $o['count'], $deadline);
    } else {
        poll($zk, $o['group'], $o['wait'], $o['count'], $deadline);
    }
    return 0;
});

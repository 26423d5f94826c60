<?php
// lookup2.php: the talk's fourth example: watch a group, rather than one
// node, for changes. ZooKeeper's watches fire once and must be re-armed,
// so a plain client can miss changes; the gateway re-arms them from a
// change journal and streams every change with its revision, as
// newline-delimited JSON. This prints the snapshot, then the group after
// each revision: one transaction can change several members (a lease's end
// removes all of them), and its messages say "more" until the last, so a
// revision is printed once it is whole. A broken stream is resumed after
// the last whole revision, without missing a change.
//
//   php lookup2.php --group web                 # until Ctrl-C
//   php lookup2.php --group web --count 3       # the snapshot and 2 revisions
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

zk_run(['group' => 'web', 'count' => 0, 'timeout' => '0s'], function (array $o, Zkcoord $zk): int {
    $deadline = zk_seconds($o['timeout']) > 0 ? microtime(true) + zk_seconds($o['timeout']) : INF;
    $members = [];  // id => value, as of $rev
    $rev = '0';     // the last whole revision
    $events = [];   // of the revision being received
    $printed = 0;
    $s = $zk->stream('GET', '/v1/groups/' . Zkcoord::seg($o['group']) . ':watch');
    while (true) {
        $left = $deadline - microtime(true);
        if ($left <= 0) {
            echo "watched {$o['group']} for {$o['timeout']}; last revision $rev\n";
            return 0;
        }
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
        if ($m === false) { // the stream ended: resume after the last whole revision
            echo "stream ended; resuming after revision $rev\n";
            [$events, $s] = [[], $zk->stream('GET', '/v1/groups/' . Zkcoord::seg($o['group']) . ':watch', null, ['startRevision' => $rev])];
            continue;
        }
        $type = strtolower(substr($m['type'], strlen('TYPE_')));
        if ($type === 'snapshot') {
            $members = [];
            foreach ($m['members'] as $mm) {
                $members[$mm['id']] = $mm['value'];
            }
            $events = [$m['resync'] ? 'snapshot (resync)' : 'snapshot'];
        } else {
            $id = $m['member']['id'];
            if ($type === 'left') {
                unset($members[$id]);
            } else {
                $members[$id] = $m['member']['value'];
            }
            $events[] = "$type $id";
            if ($m['more']) {
                continue; // more messages of this revision follow
            }
        }
        $rev = $m['revision'];
        ksort($members, SORT_STRING);
        printf("revision %s: %s; members [%s]\n", $rev, implode(', ', $events),
            implode(' ', array_map(fn ($id, $v) => "$id=$v", array_keys($members), $members)));
        $events = [];
        if (++$printed === $o['count']) {
            return 0;
        }
    }
});

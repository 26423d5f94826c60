<?php
// lookup.php: the talk's second example. Looks up a group's members, or one
// member (--id), with the revision the answer reflects. The answer comes
// from the gateway's watch-maintained cache; --linearizable makes the
// gateway catch up with a quorum write first, so the talk's warning about
// stale reads from a slow follower does not apply. Exits 1 when the member
// is not found.
//
//   php lookup.php --group web
//   php lookup.php --group web --id w1 --linearizable
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

zk_run(['group' => 'web', 'id' => '', 'linearizable' => false], function (array $o, Zkcoord $zk): int {
    $path = '/v1/groups/' . Zkcoord::seg($o['group']);
    if ($o['id'] !== '') {
        $path .= '/members/' . Zkcoord::seg($o['id']);
    }
    $query = $o['linearizable'] ? ['consistency' => 'CONSISTENCY_LINEARIZABLE'] : [];
    try {
        $r = $zk->get($path, $query);
    } catch (ZkcoordError $e) {
        if ($e->grpcCode !== ZkcoordError::NOT_FOUND) {
            throw $e;
        }
        echo "{$o['group']}/{$o['id']}: not found\n";
        return 1;
    }
    $members = $r['members'] ?? [];
    printf("group %s at revision %s (%s): %d member(s)\n", $o['group'], $r['revision'],
        $o['linearizable'] ? 'linearizable' : 'cached', count($members));
    foreach ($members as $m) {
        printf("  %s = %s (%s, created at revision %s)\n", $m['id'], $m['value'],
            $m['persistent'] ? 'persistent' : 'lease', $m['createRevision']);
    }
    return 0;
});

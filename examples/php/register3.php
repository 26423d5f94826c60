<?php
// register3.php: the talk's fifth example: add members to a group and
// remove them. The members belong to one lease: only that lease can remove
// them, another owner can neither take their IDs nor remove them, and
// revoking the lease removes whatever is left in one transaction (a
// watcher sees them leave at one revision). With --keep the lease is left
// to lapse after its TTL instead.
//
//   php register3.php --group backend --members w1,w2,w3 --remove w2
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

zk_run(['group' => 'backend', 'members' => 'w1,w2,w3', 'remove' => 'w2', 'ttl' => '10s', 'keep' => false],
    function (array $o, Zkcoord $zk): int {
        $g = Zkcoord::seg($o['group']);
        $list = function () use ($zk, $g, $o): void {
            $r = $zk->get("/v1/groups/$g", ['consistency' => 'CONSISTENCY_LINEARIZABLE']);
            printf("group %s at revision %s: [%s]\n", $o['group'], $r['revision'],
                implode(' ', array_column($r['members'] ?? [], 'id')));
        };
        $refused = fn (callable $f): string => (function () use ($f): string {
            try {
                $f();
                return 'accepted';
            } catch (ZkcoordError $e) {
                return "refused with {$e->codeName()}";
            }
        })();

        $lease = $zk->post('/v1/leases', ['ttl' => $o['ttl']])['leaseId'];
        echo "lease $lease, ttl {$o['ttl']}\n";
        $ids = array_values(array_filter(explode(',', $o['members'])));
        foreach ($ids as $i => $id) {
            $r = $zk->put("/v1/groups/$g/members/" . Zkcoord::seg($id), ['value' => sprintf('10.0.0.%d:80', $i + 1), 'leaseId' => $lease]);
            echo "added $id = {$r['member']['value']} at revision {$r['revision']}\n";
        }
        $list();
        foreach (array_filter(explode(',', $o['remove'])) as $id) {
            $r = $zk->post("/v1/groups/$g/members/" . Zkcoord::seg($id) . ':deregister', ['leaseId' => $lease]);
            echo "removed $id at revision {$r['revision']}\n";
        }
        $list();

        // Another owner can neither take a member's ID nor remove the member.
        $other = $zk->post('/v1/leases', ['ttl' => $o['ttl']])['leaseId'];
        $first = Zkcoord::seg($ids[0]);
        echo "another lease registering {$ids[0]}: " . $refused(fn () => $zk->put("/v1/groups/$g/members/$first", ['value' => '10.9.9.9:80', 'leaseId' => $other])) . "\n";
        echo "another lease removing {$ids[0]}: " . $refused(fn () => $zk->post("/v1/groups/$g/members/$first:deregister", ['leaseId' => $other])) . "\n";
        $zk->delete('/v1/leases/' . Zkcoord::seg($other));

        if ($o['keep']) {
            echo "keeping lease $lease: its members go when its TTL lapses, unless renewed (php register2.php --lease $lease)\n";
            return 0;
        }
        $r = $zk->delete('/v1/leases/' . Zkcoord::seg($lease));
        echo "lease revoked at revision {$r['revision']}: its members left together\n";
        $list();
        return 0;
    });

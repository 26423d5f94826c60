<?php
// talktoensemble.php: the talk's ninth example: connect to an ensemble.
// The gateway is what connects to ZooKeeper, with the ensemble's full
// connect string (zkcoord serve --zk zk1:2181,zk2:2181,zk3:2181/myapp),
// moving to another server when one fails and keeping its session. A PHP
// client is given several gateway replicas instead, in ZKCOORD_URL
// (comma-separated): each request goes to the first that can be reached.
// This shows the health of each replica, then asks the ensemble, through
// that failover, where the gateway is connected (GET /v1/status).
//
//   ZKCOORD_URL=http://zc1:7071,http://zc2:7071 php talktoensemble.php
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

zk_run([], function (array $o, Zkcoord $zk): int {
    $up = 0;
    foreach ($zk->urls as $url) {
        try {
            $h = (new Zkcoord($url, null, 2.0, 1.0))->health();
            $up += $h === 'SERVING' ? 1 : 0;
            echo "gateway $url: $h\n";
        } catch (ZkcoordError $e) {
            echo "gateway $url: down ({$e->getMessage()})\n";
        }
    }
    echo "$up of " . count($zk->urls) . " gateway(s) serving\n";

    $zk->onFailover = function (string $url, string $err, string $next): void {
        echo "failover: $url cannot be reached, trying $next\n";
    };
    $st = $zk->get('/v1/status');
    echo "status from {$zk->url()}: replica {$st['replicaId']}, version {$st['version']}\n";
    printf("ZooKeeper: %s to %s since %s\n", substr($st['state'], strlen('CONNECTION_STATE_')), $st['server'] ?: 'no server', $st['stateSince']);
    printf("ensemble: %s, chroot %s, root %s\n", implode(',', $st['servers']), $st['chroot'] ?: '(none)', $st['root']);
    printf("session %s, timeout %s, expirations %s\n", $st['sessionId'], $st['sessionTimeout'], $st['sessionExpirations']);
    printf("holding %s lease(s), watching %s group(s), %s long-poll(s) waiting\n", $st['leases'], $st['watchedGroups'], $st['polls'] ?? '0');
    return 0;
});

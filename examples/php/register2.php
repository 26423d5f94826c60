<?php
// register2.php: the talk's third example, an EPHEMERAL registration. A
// ZooKeeper ephemeral node dies with its session, and a PHP request's
// session would die with the request, 50 ms later. Here the member belongs
// to a lease with a TTL instead: ONE call registers it and the process
// exits; the member stays for the TTL, then goes by itself (every watcher
// sees it leave). A later request keeps it with --lease, a cheap keepalive
// (no ZooKeeper write), or lets it lapse.
//
//   php register2.php --group web --id php-1 --ttl 30s   # prints the lease
//   php lookup.php --group web                           # php-1 is there for 30 s
//   php register2.php --group web --id php-1 --lease <lease>   # a later request renews it
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

zk_run(['group' => 'web', 'id' => 'php-1', 'value' => '10.0.0.2:80', 'ttl' => '30s', 'lease' => ''],
    function (array $o, Zkcoord $zk): int {
        $name = "{$o['group']}/{$o['id']}";
        if ($o['lease'] !== '') {
            try {
                $k = $zk->post('/v1/leases/' . Zkcoord::seg($o['lease']) . ':keepalive');
                echo "renewed lease {$o['lease']} for {$k['ttl']}: $name stays until {$k['expiresAt']}\n";
                return 0;
            } catch (ZkcoordError $e) {
                if ($e->grpcCode !== ZkcoordError::NOT_FOUND) {
                    throw $e;
                }
                echo "lease {$o['lease']} has ended (and $name with it): registering again\n";
            }
        }
        $t0 = microtime(true);
        try {
            $r = $zk->put('/v1/groups/' . Zkcoord::seg($o['group']) . '/members/' . Zkcoord::seg($o['id']),
                ['value' => $o['value'], 'ttl' => $o['ttl']]);
        } catch (ZkcoordError $e) {
            if ($e->grpcCode === ZkcoordError::ALREADY_EXISTS) {
                fwrite(STDERR, "$name is still held by an earlier lease: renew it with --lease, or wait out its TTL\n");
            }
            throw $e;
        }
        printf("registered %s = %s with a %s lease %s in %.1f ms, until %s\n", $name, $r['member']['value'],
            $o['ttl'], $r['leaseId'], (microtime(true) - $t0) * 1000, $r['leaseExpiresAt']);
        echo "exiting: $name stays until its lease ends (a ZooKeeper ephemeral would go with this process)\n";
        return 0;
    });

<?php
// register.php: the talk's first example. Registers a node with a value
// for DNS-like service discovery: a persistent member, which stays until it
// is deregistered, whatever happens to the process that registered it.
// Registering the same value again changes nothing (same revision).
//
//   php register.php --group web --id w1 --value 10.0.0.1:80
//   php lookup.php --group web                 # finds it
//   php register.php --group web --id w1 --deregister
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

zk_run(['group' => 'web', 'id' => 'w1', 'value' => '10.0.0.1:80', 'deregister' => false], function (array $o, Zkcoord $zk): int {
    $path = '/v1/groups/' . Zkcoord::seg($o['group']) . '/members/' . Zkcoord::seg($o['id']);
    if ($o['deregister']) {
        $r = $zk->delete($path);
        echo "deregistered {$o['group']}/{$o['id']} at revision {$r['revision']}\n";
        return 0;
    }
    $r = $zk->put($path, ['value' => $o['value'], 'persistent' => true]);
    $m = $r['member'];
    printf("registered %s/%s = %s (persistent: %s) at revision %s\n",
        $m['group'], $m['id'], $m['value'], json_encode($m['persistent']), $m['modRevision']);

    $again = $zk->put($path, ['value' => $o['value'], 'persistent' => true]);
    printf("registered again: revision %s (unchanged: %s)\n",
        $again['member']['modRevision'], json_encode($again['member']['modRevision'] === $m['modRevision']));
    echo "the member stays until deregistered: run with --deregister to remove it\n";
    return 0;
});

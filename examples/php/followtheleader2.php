<?php
// followtheleader2.php: the talk's seventh example, leader election with
// herd avoidance. Workers queue in the order they campaign; each waits on
// the one just ahead of it only, so a leader stepping down wakes exactly
// one worker: this one prints every message it gets, and is not woken
// while others ahead of it come and go. Each leader's fencing token is
// higher than every earlier leader's; the leader writes it to a shared
// resource (--resource, a file here) that refuses a lower token, so a
// deposed leader's late write fails (--write TOKEN tries one). A worker
// leads for --lead, then resigns; --lead 0 leads until SIGTERM or Ctrl-C.
//
//   php followtheleader2.php --election jobs --id worker-1 --lead 0   # leads
//   php followtheleader2.php --election jobs --id worker-2            # queued, 1 ahead
//   php followtheleader2.php --election jobs --id worker-3            # queued, 2 ahead
//   php followtheleader2.php --write 5                                # a late write: refused
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

/** Writes $token to the resource unless it has seen a higher one; returns the error, or null. */
function fenced_write(string $file, int $token): ?string
{
    $f = fopen($file, 'c+');
    flock($f, LOCK_EX);
    $highest = (int) stream_get_contents($f);
    if ($token < $highest) {
        $err = "refused: token $token is below $highest";
    } else {
        ftruncate($f, 0);
        rewind($f);
        fwrite($f, (string) $token);
        $err = null;
    }
    flock($f, LOCK_UN);
    fclose($f);
    return $err;
}

zk_run(['election' => 'jobs', 'id' => 'worker-1', 'lead' => '200ms', 'ttl' => '10s',
        'resource' => sys_get_temp_dir() . '/zkcoord-jobs.token', 'write' => 0], function (array $o, Zkcoord $zk): int {
    if ($o['write'] > 0) {
        $err = fenced_write($o['resource'], $o['write']);
        echo "write with token {$o['write']}: " . ($err ?? 'accepted') . "\n";
        return $err === null ? 0 : 1;
    }
    $id = $o['id'];
    $e = Zkcoord::seg($o['election']);
    $lead = zk_seconds($o['lead']);
    $stopped = zk_stop_signal();
    $s = $zk->stream('POST', "/v1/elections/$e:campaign", ['value' => $id, 'ttl' => $o['ttl']]);
    $until = null; // when the term ends
    while (($m = $s->next(0.05)) !== false) {
        if ($m === null) {
            if ($stopped() && $until === null) {
                $s->close();
                echo "$id: stopped while queued; candidacy withdrawn\n";
                return 0;
            }
            if ($until !== null && ($stopped() || ($until > 0 && microtime(true) >= $until))) {
                echo "$id: resigning\n";
                $zk->post("/v1/elections/$e:resign", ['leaseId' => $m0['leaseId']]);
                $until = null;
            }
            continue;
        }
        $m0 = $m;
        switch ($m['status']) {
            case 'STATUS_QUEUED':
                printf("%s: queued, %d ahead, leader %s\n", $id, $m['position'], $m['leader']['value'] ?? '(none)');
                break;
            case 'STATUS_ELECTED':
                $token = (int) $m['fencingToken'];
                echo "$id: elected, token $token\n";
                $err = fenced_write($o['resource'], $token);
                if ($err !== null) {
                    echo "$id: write $err\n";
                    return 1;
                }
                echo "$id: wrote with token $token\n";
                $until = $lead > 0 ? microtime(true) + $lead : 0;
                break;
            case 'STATUS_JEOPARDY':
                echo "$id: jeopardy until {$m['jeopardyDeadline']}\n";
                break;
            case 'STATUS_LOST':
                echo "$id: lost the term (token {$m['fencingToken']})\n";
                return 3;
            case 'STATUS_RESIGNED':
                echo "$id: resigned\n";
                return 0;
        }
    }
    echo "$id: the campaign stream ended\n";
    return 1;
});

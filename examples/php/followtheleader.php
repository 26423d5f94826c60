<?php
// followtheleader.php: the talk's sixth example, group leader election: a
// cron job that runs only where it leads. Each host runs it; it campaigns
// over the Campaign stream (newline-delimited JSON), whose own lease
// (--ttl) the gateway keeps while the stream is open: if this process dies,
// its candidacy goes at once. Elected, it runs the job in --steps steps,
// each stamped with the term's fencing token (a resource that fences by
// token refuses a deposed leader), pauses on JEOPARDY, stops on LOST, and
// resigns at the end so the next host takes over. --steps 0 leads until
// SIGTERM or Ctrl-C. --follow only follows who leads, with long-polls (as
// a PHP web process can: each answers when the leader changes), or with
// the Observe stream (--follow --stream).
//
//   php followtheleader.php --election cron --id host-1 --steps 0   # terminal 1: leads
//   php followtheleader.php --election cron --id host-2             # terminal 2: waits for host-1
//   php followtheleader.php --election cron --follow                # terminal 3: who leads
declare(strict_types=1);
require __DIR__ . '/zkcoord.php';

/**
 * Prints who leads each time it changes, --count times or until stopped:
 * with long-polls of the leader (GET .../leader?afterRevision=R&wait=30s,
 * answered as soon as the leader changes), or --stream, the Observe stream.
 * Nothing to let go of: Ctrl-C ends it at once.
 */
function follow(Zkcoord $zk, array $o, float $timeout): int
{
    $e = Zkcoord::seg($o['election']);
    $show = function (?array $l): void {
        echo $l ? "observer: leader is {$l['value']} (token {$l['fencingToken']})\n" : "observer: no leader\n";
    };
    $n = 0;
    $deadline = $timeout > 0 ? microtime(true) + $timeout : INF;
    if ($o['stream']) {
        $s = $zk->stream('GET', "/v1/elections/$e:observe");
        while (microtime(true) < $deadline && ($m = $s->next(0.2)) !== false) {
            if ($m !== null) {
                $show($m['leader'] ?? null);
                if (++$n === $o['count']) {
                    break;
                }
            }
        }
        return 0;
    }
    [$rev, $last] = ['0', false];
    while (microtime(true) < $deadline) {
        $r = $zk->poll("/v1/elections/$e/leader", $rev, zk_seconds($o['wait']));
        $rev = $r['revision'];
        $l = $r['leader'] ?? null;
        $key = $l ? [$l['candidate'], $l['value']] : null;
        if ($key === $last) {
            continue; // the wait ended, or something changed behind the leader
        }
        $last = $key;
        $show($l);
        if (++$n === $o['count']) {
            break;
        }
    }
    return 0;
}

zk_run(['election' => 'cron', 'id' => 'host-1', 'steps' => 3, 'step' => '200ms', 'ttl' => '10s',
        'follow' => false, 'stream' => false, 'wait' => '30s', 'count' => 0, 'timeout' => '0s'], function (array $o, Zkcoord $zk): int {
    $e = Zkcoord::seg($o['election']);
    $timeout = zk_seconds($o['timeout']);
    if ($o['follow']) {
        return follow($zk, $o, $timeout);
    }
    $stopped = zk_stop_signal();

    $id = $o['id'];
    $s = $zk->stream('POST', "/v1/elections/$e:campaign", ['value' => $id, 'ttl' => $o['ttl']], [], $timeout);
    $step = zk_seconds($o['step']);
    [$token, $lease, $paused, $done, $resigning] = [null, null, false, 0, null];
    while (true) {
        $m = $s->next($token !== null && !$paused ? $step : 0.2);
        if ($m === false) {
            echo "$id: the campaign stream ended\n";
            return 1;
        }
        if ($m !== null) {
            $lease = $m['leaseId'];
            switch ($m['status']) {
                case 'STATUS_QUEUED':
                    printf("%s: waiting, %d candidate(s) ahead, leader %s\n", $id, $m['position'] ?? 0, $m['leader']['value'] ?? '(none)');
                    break;
                case 'STATUS_ELECTED':
                    if ($paused) {
                        echo "$id: ZooKeeper is back, term goes on (token {$m['fencingToken']})\n";
                    } else {
                        echo "$id: elected leader of {$o['election']} (token {$m['fencingToken']})\n";
                    }
                    [$token, $paused] = [$m['fencingToken'], false];
                    break;
                case 'STATUS_JEOPARDY':
                    echo "$id: jeopardy, the term may end at {$m['jeopardyDeadline']}: pausing the job\n";
                    $paused = true;
                    break;
                case 'STATUS_LOST':
                    echo "$id: term lost (token {$m['fencingToken']}): stopping the job\n";
                    return 3;
                case 'STATUS_RESIGNED':
                    echo "$id: resigned (was leader: " . json_encode($resigning['wasLeader'] ?? false) . ")\n";
                    return 0;
            }
            continue;
        }
        if ($resigning !== null) {
            continue; // waiting for RESIGNED
        }
        if ($stopped() && $token === null) {
            $s->close(); // withdraws the candidacy
            echo "$id: stopped before being elected; candidacy withdrawn\n";
            return 0;
        }
        if ($token === null || $paused) {
            continue;
        }
        if (!$stopped() && ($o['steps'] === 0 || $done < $o['steps'])) {
            $done++;
            echo "$id: job step " . ($o['steps'] ? "$done/{$o['steps']}" : $done) . " with token $token\n";
            continue;
        }
        echo "$id: " . ($stopped() ? 'stopped' : 'job done') . ", resigning\n";
        $resigning = $zk->post("/v1/elections/$e:resign", ['leaseId' => $lease]);
    }
});

<?php
// zk_register.php: what a PHP request does with php-zookeeper to register
// itself as an EPHEMERAL node: open a ZooKeeper session, create the node,
// close the session (the node goes with it). Debian has no php-zookeeper,
// so this is a minimal client of ZooKeeper's wire protocol (jute: big-endian
// fields, each packet after its 4-byte length), sockets and pack() only.
// It times the registration (connect + create) and the close, and prints
//
//   register_ms=<connect+create> connect_ms=<..> create_ms=<..> close_ms=<..>
//
// usage: php zk_register.php host:port /path/of/the/node value
declare(strict_types=1);

[, $addr, $path, $value] = $argv + [null, null, null, ''];
if ($addr === null || $path === null) {
    fwrite(STDERR, "usage: php zk_register.php host:port /path value\n");
    exit(2);
}

function fail(string $what): never
{
    fwrite(STDERR, "zk_register.php: $what\n");
    exit(1);
}

function send($s, string $payload): void
{
    $p = pack('N', strlen($payload)) . $payload;
    if (fwrite($s, $p) !== strlen($p)) {
        fail('write failed');
    }
}

function recv($s): string
{
    $n = unpack('N', readn($s, 4))[1];
    return readn($s, $n);
}

function readn($s, int $n): string
{
    $b = '';
    while (strlen($b) < $n) {
        $c = fread($s, $n - strlen($b));
        if ($c === false || $c === '') {
            fail('connection closed by the server');
        }
        $b .= $c;
    }
    return $b;
}

function int32(int $v): int
{
    return $v >= 0x80000000 ? $v - 0x100000000 : $v;
}

// ustring and buffer: a length, then the bytes.
function str(string $s): string
{
    return pack('N', strlen($s)) . $s;
}

// checkReply checks a ReplyHeader {int xid, long zxid, int err} and returns what follows.
function checkReply(string $r, int $xid, string $op): string
{
    ['x' => $x, 'e' => $e] = unpack('Nx/Jz/Ne', $r);
    if (int32($x) !== $xid || int32($e) !== 0) {
        fail(sprintf('%s: xid %d, error %d', $op, int32($x), int32($e)));
    }
    return substr($r, 16);
}

$t0 = microtime(true);
$s = stream_socket_client("tcp://$addr", $errno, $errstr, 10);
if ($s === false) {
    fail("connect $addr: $errstr");
}
stream_set_timeout($s, 10);
// ConnectRequest {int protocolVersion, long lastZxidSeen, int timeOut, long sessionId, buffer passwd}
send($s, pack('NJNJ', 0, 0, 10000, 0) . str(str_repeat("\0", 16)));
// ConnectResponse {int protocolVersion, int timeOut, long sessionId, buffer passwd}
['t' => $timeout, 'id' => $session] = unpack('Nv/Nt/Jid', recv($s));
if ($timeout <= 0 || $session === 0) {
    fail('the server refused the session');
}
$t1 = microtime(true);
// RequestHeader {int xid, int type=1 (create)}, CreateRequest {ustring path,
// buffer data, vector<ACL> acl (world:anyone, perms ALL=31), int flags=1 (EPHEMERAL)}
send($s, pack('NN', 1, 1) . str($path) . str($value) . pack('NN', 1, 31) . str('world') . str('anyone') . pack('N', 1));
checkReply(recv($s), 1, "create $path");
$t2 = microtime(true);
// RequestHeader {int xid, int type=-11 (closeSession)}
send($s, pack('NN', 2, -11));
checkReply(recv($s), 2, 'closeSession');
fclose($s);
$t3 = microtime(true);
printf("register_ms=%.3f connect_ms=%.3f create_ms=%.3f close_ms=%.3f\n",
    ($t2 - $t0) * 1000, ($t1 - $t0) * 1000, ($t2 - $t1) * 1000, ($t3 - $t2) * 1000);

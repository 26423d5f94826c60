<?php
// http_register.php: what a PHP request does to register itself through
// zkcoord: ONE HTTP call, a member with a TTL (the same PUT as
// examples/php/register2.php, with curl alone). It times that call and
// prints
//
//   register_ms=<the PUT, connection included> tcp_ms=<..> server_ms=<..>
//
// usage: php http_register.php http://gateway:7071 group member value ttl
declare(strict_types=1);

[, $url, $group, $id, $value, $ttl] = $argv + [null, null, null, '', '30s'];
if ($url === null || $id === null) {
    fwrite(STDERR, "usage: php http_register.php http://host:port group member value ttl\n");
    exit(2);
}
$t0 = microtime(true);
$ch = curl_init("$url/v1/groups/" . rawurlencode($group) . '/members/' . rawurlencode($id));
curl_setopt_array($ch, [
    CURLOPT_CUSTOMREQUEST => 'PUT',
    CURLOPT_POSTFIELDS => json_encode(['value' => $value, 'ttl' => $ttl]),
    CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_TIMEOUT => 10,
]);
$body = curl_exec($ch);
$status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
$t1 = microtime(true);
if ($status !== 200) {
    fwrite(STDERR, "http_register.php: HTTP $status: " . ($body === false ? curl_error($ch) : $body) . "\n");
    exit(1);
}
// curl's own clock: the TCP connection, and from the request sent to the
// first byte of the answer (the gateway's work, ZooKeeper's included).
$us = fn (int $opt) => curl_getinfo($ch, $opt) / 1000;
printf("register_ms=%.3f tcp_ms=%.3f server_ms=%.3f\n", ($t1 - $t0) * 1000,
    $us(CURLINFO_CONNECT_TIME_T), $us(CURLINFO_STARTTRANSFER_TIME_T) - $us(CURLINFO_PRETRANSFER_TIME_T));

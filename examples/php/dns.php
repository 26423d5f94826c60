<?php
// dns.php: the talk's "DNS type service discovery", with nothing but PHP's
// own resolver. zkcoord serves its registry over DNS (zkcoord serve
// --dns-listen, docs/DNS.md): a group's SRV records name each member and
// its port, the additional section gives each member's address, and a
// member's TXT records its metadata. No client library, no HTTP: the
// machine's resolver forwards the domain to zkcoord (docs/DNS.md shows
// dnsmasq, systemd-resolved and CoreDNS doing it), so any process finds a
// service the way it finds a host. Exits 1 when there is no such service.
//
//   php dns.php --group web                # every member: name, address, port
//   php dns.php --group web --pick         # one of them at random, to connect to
//   php dns.php --group web --member w1    # one member, with its metadata
//   php dns.php --group web --domain svc.example   # zkcoord's --dns-domain
declare(strict_types=1);

$o = getopt('', ['group:', 'member:', 'domain:', 'pick', 'help']);
if (isset($o['help']) || !isset($o['group'])) {
    fwrite(STDERR, "usage: php dns.php --group NAME [--member ID | --pick] [--domain zkcoord]\n");
    exit(2);
}
$domain = rtrim($o['domain'] ?? 'zkcoord', '.');
$service = "{$o['group']}.$domain";

if (isset($o['member'])) {
    $name = "{$o['member']}.$service";
    $addrs = records($name, DNS_A | DNS_AAAA);
    if ($addrs === []) {
        fwrite(STDERR, "$name: no such member\n");
        exit(1);
    }
    $ports = array_map(fn ($r) => $r['port'], records($name, DNS_SRV));
    printf("%s: %s%s\n", $name, implode(', ', array_map('address', $addrs)),
        $ports ? ' port ' . implode(', ', $ports) : '');
    foreach (records($name, DNS_TXT) as $t) {
        echo '  ', implode('', $t['entries']), "\n"; // one key=value per record
    }
    exit(0);
}

// SRV: one record per member; the additional section holds their addresses.
$additional = [];
$srv = records($service, DNS_SRV, $additional);
if ($srv === []) {
    fwrite(STDERR, "$service: no such service\n");
    exit(1);
}
$addressOf = [];
foreach ($additional as $r) {
    if (in_array($r['type'], ['A', 'AAAA'], true)) {
        $addressOf[strtolower($r['host'])] = address($r);
    }
}
$members = [];
foreach ($srv as $r) {
    // A target outside zkcoord (a member registered as host:port) is
    // resolved like any host name.
    $host = $addressOf[strtolower($r['target'])] ?? $r['target'];
    $members[$r['target']] = "$host:{$r['port']}";
}
ksort($members);
if (isset($o['pick'])) {
    $target = array_rand($members); // every member weighs the same
    echo "pick: $target -> {$members[$target]}\n";
    exit(0);
}
printf("%s: %d member(s)\n", $service, count($members));
foreach ($members as $target => $hostPort) {
    echo "  $target -> $hostPort\n";
}

/** The records of $name of $type; [] when there are none; exit 1 when the resolver fails. */
function records(string $name, int $type, ?array &$additional = null): array
{
    $authority = [];
    $additional = [];
    $r = @dns_get_record($name, $type, $authority, $additional);
    if ($r === false) {
        fwrite(STDERR, "$name: " . (error_get_last()['message'] ?? 'the resolver failed') . "\n");
        exit(1);
    }
    return $r;
}

/** An A or AAAA record's address, an IPv6 one in brackets (to stand before a port). */
function address(array $r): string
{
    return $r['type'] === 'AAAA' ? "[{$r['ipv6']}]" : $r['ip'];
}

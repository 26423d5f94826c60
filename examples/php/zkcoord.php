<?php
// zkcoord.php: the little HTTP/JSON client the PHP examples share. PHP 8.2
// with the curl and json extensions only (Debian: php8.2-cli php8.2-curl).
//
//   $zk = Zkcoord::fromEnv();   // ZKCOORD_URL (several: comma-separated), ZKCOORD_TOKEN
//   $r  = $zk->put('/v1/groups/web/members/w1', ['value' => '10.0.0.1:80', 'ttl' => '30s']);
//   $g  = $zk->poll('/v1/groups/web', $g['revision'], 30.0);   // a blocking query
//   $s  = $zk->stream('GET', '/v1/groups/web:watch');
//   while (($m = $s->next(1.0)) !== false) { if ($m !== null) { ... } }
//
// Every failure is a ZkcoordError carrying the gRPC code of the gateway's
// google.rpc.Status answer, or UNAVAILABLE / DEADLINE_EXCEEDED for a
// gateway that cannot be reached or does not answer in time. A request
// that cannot reach a gateway goes to the next one in ZKCOORD_URL. The
// paths and bodies are docs/HTTP.md's; zk_run() is the scripts' main.

declare(strict_types=1);

/** A failed call: the gRPC code and message of the gateway's answer. */
final class ZkcoordError extends RuntimeException
{
    public const CANCELLED = 1, UNKNOWN = 2, INVALID_ARGUMENT = 3, DEADLINE_EXCEEDED = 4,
        NOT_FOUND = 5, ALREADY_EXISTS = 6, PERMISSION_DENIED = 7, RESOURCE_EXHAUSTED = 8,
        FAILED_PRECONDITION = 9, ABORTED = 10, OUT_OF_RANGE = 11, UNIMPLEMENTED = 12,
        INTERNAL = 13, UNAVAILABLE = 14, DATA_LOSS = 15, UNAUTHENTICATED = 16;

    /** @param array $details the Status's details (errdetails in JSON) */
    public function __construct(public readonly int $grpcCode, string $message,
                                public readonly int $httpStatus = 0, public readonly array $details = [])
    {
        parent::__construct($message, $grpcCode);
    }

    /** The code's name, e.g. ALREADY_EXISTS. */
    public function codeName(): string
    {
        $names = array_flip((new ReflectionClass(self::class))->getConstants());
        return $names[$this->grpcCode] ?? "CODE_{$this->grpcCode}";
    }

    /** The error from a google.rpc.Status in JSON, or from the HTTP status when the body is not one. */
    public static function fromStatus(int $http, string $body): self
    {
        $s = json_decode($body, true);
        if (is_array($s) && isset($s['code'], $s['message'])) {
            return new self((int) $s['code'], (string) $s['message'], $http, $s['details'] ?? []);
        }
        $code = [400 => 3, 401 => 16, 403 => 7, 404 => 5, 409 => 10, 429 => 8, 499 => 1,
                 501 => 12, 503 => 14, 504 => 4][$http] ?? self::UNKNOWN;
        return new self($code, "HTTP $http: " . trim(substr($body, 0, 200)), $http);
    }
}

/** A client of one zkcoord gateway, or of several: a request goes to the next when one cannot be reached. */
final class Zkcoord
{
    /** @var list<string> */
    public readonly array $urls;
    /** Called as ($url, $error, $next) when a gateway is skipped; default: a line on stderr. */
    public ?Closure $onFailover = null;
    private int $cur = 0;
    private ?CurlHandle $ch = null;

    /** @param string|list<string> $urls base URLs, e.g. http://127.0.0.1:7071 */
    public function __construct(string|array $urls, private ?string $token = null,
                                private float $timeout = 10.0, private float $connectTimeout = 2.0)
    {
        $urls = is_string($urls) ? explode(',', $urls) : $urls;
        $this->urls = array_values(array_filter(array_map(fn ($u) => rtrim(trim($u), '/'), $urls)));
        if (!$this->urls) {
            throw new InvalidArgumentException('no gateway URL');
        }
        $this->onFailover = function (string $url, string $err, string $next): void {
            fwrite(STDERR, "zkcoord: $url: $err; trying $next\n");
        };
    }

    /** A client of ZKCOORD_URL (default http://127.0.0.1:7071; several, comma-separated), with ZKCOORD_TOKEN as bearer token when set. */
    public static function fromEnv(float $timeout = 10.0): self
    {
        $token = getenv('ZKCOORD_TOKEN');
        return new self(getenv('ZKCOORD_URL') ?: 'http://127.0.0.1:7071', $token === false || $token === '' ? null : $token, $timeout);
    }

    /** The gateway the last call went to. */
    public function url(): string
    {
        return $this->urls[$this->cur];
    }

    /** A path segment from a name (group, member, election, ...). */
    public static function seg(string $name): string
    {
        return strtr(rawurlencode($name), ['%3A' => ':', '%40' => '@', '%3D' => '=']);
    }

    public function get(string $path, array $query = [], ?float $timeout = null): array
    {
        return $this->call('GET', $path, null, $query, $timeout);
    }

    public function put(string $path, array $body = [], ?float $timeout = null): array
    {
        return $this->call('PUT', $path, $body, [], $timeout);
    }

    public function post(string $path, array $body = [], ?float $timeout = null): array
    {
        return $this->call('POST', $path, $body, [], $timeout);
    }

    public function delete(string $path, array $query = [], ?float $timeout = null): array
    {
        return $this->call('DELETE', $path, null, $query, $timeout);
    }

    /**
     * One unary call: JSON in (null: no body), the answer's JSON decoded.
     * A gateway that cannot be connected to is skipped for the next (the
     * request never left); for a GET, so is one answering UNAVAILABLE.
     *
     * @throws ZkcoordError
     */
    public function call(string $method, string $path, ?array $body = null, array $query = [], ?float $timeout = null): array
    {
        [$status, $text] = $this->request($method, $path, $body, $query, $timeout ?? $this->timeout, 'application/json');
        if ($status !== 200) {
            throw ZkcoordError::fromStatus($status, $text);
        }
        $v = json_decode($text, true);
        if (!is_array($v)) {
            throw new ZkcoordError(ZkcoordError::INTERNAL, "$method $path: the answer is not JSON: " . substr($text, 0, 200), $status);
        }
        return $v;
    }

    /**
     * A blocking query (long-poll): GET $path answering once what it reads
     * has changed after revision $after, or after $wait seconds with the
     * state then; revision 0 answers at once. Pass the answer's revision
     * as the next $after, even one lower than $after (the gateway reset:
     * another ensemble). A gateway that cannot be reached, or answers
     * UNAVAILABLE or RESOURCE_EXHAUSTED, is polled again after a second,
     * three times at most (docs/HTTP.md's rules of the loop).
     */
    public function poll(string $path, string $after, float $wait, array $query = []): array
    {
        $query = ['afterRevision' => $after, 'wait' => sprintf('%.3fs', $wait)] + $query;
        for ($try = 1; ; $try++) {
            try { // the gateway may add a sixteenth of the wait
                return $this->get($path, $query, $wait * 17 / 16 + $this->timeout);
            } catch (ZkcoordError $e) {
                if ($try > 3 || !in_array($e->grpcCode, [ZkcoordError::UNAVAILABLE, ZkcoordError::RESOURCE_EXHAUSTED], true)) {
                    throw $e;
                }
                fwrite(STDERR, "zkcoord: {$e->codeName()}: {$e->getMessage()}; polling again in 1s\n");
                sleep(1);
            }
        }
    }

    /** GET /healthz of the current gateway: SERVING (200) or NOT_SERVING (503). */
    public function health(?float $timeout = null): string
    {
        [$status, $text] = $this->request('GET', '/healthz', null, [], $timeout ?? $this->timeout, 'text/plain', false);
        return $status === 200 || $status === 503 ? trim($text) : "HTTP $status";
    }

    /**
     * Opens a server stream on its REST path (newline-delimited JSON) and
     * returns it once the request is sent; read it with next(). $timeout
     * bounds the whole stream (0: none).
     */
    public function stream(string $method, string $path, ?array $body = null, array $query = [], float $timeout = 0): ZkcoordStream
    {
        return new ZkcoordStream($this, $method, $path, $body, $query, $timeout);
    }

    /** @internal the curl options of a request to the current gateway */
    public function options(string $method, string $path, ?array $body, array $query, float $timeout, string $accept): array
    {
        $headers = ["Accept: $accept"];
        if ($this->token !== null) {
            $headers[] = "Authorization: Bearer {$this->token}";
        }
        $o = [
            CURLOPT_URL => $this->url() . $path . ($query ? '?' . http_build_query($query) : ''),
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_CONNECTTIMEOUT_MS => (int) ($this->connectTimeout * 1000),
            CURLOPT_TIMEOUT_MS => (int) ($timeout * 1000),
            CURLOPT_NOSIGNAL => true,
        ];
        if ($body !== null) {
            $headers[] = 'Content-Type: application/json';
            $o[CURLOPT_POSTFIELDS] = $body ? json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES) : '{}';
        }
        $o[CURLOPT_HTTPHEADER] = $headers;
        return $o;
    }

    /**
     * @internal Moves to the next gateway after $err on the current one;
     * false when every one has been tried since $first.
     */
    public function failover(int $first, string $err): bool
    {
        $next = ($this->cur + 1) % count($this->urls);
        if ($next === $first) {
            return false;
        }
        if ($this->onFailover) {
            ($this->onFailover)($this->url(), $err, $this->urls[$next]);
        }
        $this->cur = $next;
        return true;
    }

    /** @internal */
    public function current(): int
    {
        return $this->cur;
    }

    /** @return array{int, string} the HTTP status and body */
    private function request(string $method, string $path, ?array $body, array $query, float $timeout, string $accept, bool $retry503 = true): array
    {
        $first = $this->cur;
        while (true) {
            $this->ch ??= curl_init();
            curl_reset($this->ch); // keeps the connection for the next call
            curl_setopt_array($this->ch, $this->options($method, $path, $body, $query, $timeout, $accept) + [CURLOPT_RETURNTRANSFER => true]);
            $text = curl_exec($this->ch);
            $errno = curl_errno($this->ch);
            $status = (int) curl_getinfo($this->ch, CURLINFO_RESPONSE_CODE);
            if ($errno === 0) {
                if ($status === 503 && $method === 'GET' && $retry503 && $this->failover($first, 'UNAVAILABLE')) {
                    continue;
                }
                return [$status, (string) $text];
            }
            $err = zk_transport_error($this->ch, $errno, $method, $path, $timeout);
            if (!zk_not_connected($this->ch, $errno) || !$this->failover($first, $err->getMessage())) {
                throw $err;
            }
        }
    }
}

/**
 * A server stream: newline-delimited JSON, read as it comes with curl's
 * write callback (curl_multi, so that a script can do other work between
 * messages). Closing it, or dropping the object, ends the call: the
 * gateway then withdraws what the stream owned (a candidacy, a barrier
 * participation on the stream's own lease).
 */
final class ZkcoordStream
{
    private CurlMultiHandle $mh;
    private ?CurlHandle $ch = null;
    private string $buf = '';
    /** @var list<array|ZkcoordError> */
    private array $queue = [];
    private bool $done = false;
    private int $status = 0;
    private string $errBody = '';
    private bool $received = false;
    private int $first;

    /** @internal use Zkcoord::stream */
    public function __construct(private Zkcoord $zk, private string $method, private string $path,
                                private ?array $body, private array $query, private float $timeout)
    {
        $this->mh = curl_multi_init();
        $this->first = $zk->current();
        $this->open();
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * The next message. Waits at most $wait seconds (null: until one comes or
     * the stream ends) and returns null when none came by then; false when
     * the stream has ended cleanly.
     *
     * @throws ZkcoordError when the call is refused, ends with an error line,
     *   or the gateway cannot be reached; DEADLINE_EXCEEDED after the stream's timeout
     */
    public function next(?float $wait = null): array|null|false
    {
        $deadline = $wait === null ? INF : microtime(true) + $wait;
        while (true) {
            if ($this->queue) {
                $m = array_shift($this->queue);
                if ($m instanceof ZkcoordError) {
                    $this->close();
                    throw $m;
                }
                return $m;
            }
            if ($this->done) {
                return false;
            }
            curl_multi_exec($this->mh, $running);
            while ($info = curl_multi_info_read($this->mh)) {
                $this->finished($info['result']);
            }
            if ($this->queue || $this->done) {
                continue;
            }
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                return null;
            }
            if (curl_multi_select($this->mh, min($left, 1.0)) === -1) {
                usleep(1000);
            }
        }
    }

    /** Ends the call. */
    public function close(): void
    {
        if ($this->ch !== null) {
            curl_multi_remove_handle($this->mh, $this->ch);
            curl_close($this->ch);
            $this->ch = null;
        }
        $this->done = true;
    }

    private function open(): void
    {
        $this->ch = curl_init();
        curl_setopt_array($this->ch, $this->zk->options($this->method, $this->path, $this->body, $this->query, $this->timeout, 'application/x-ndjson') + [
            CURLOPT_WRITEFUNCTION => $this->write(...),
        ]);
        curl_multi_add_handle($this->mh, $this->ch);
    }

    /** curl's write callback: splits what came into lines, one message each. */
    private function write(CurlHandle $ch, string $data): int
    {
        $this->received = true;
        if ($this->status === 0) {
            $this->status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        }
        if ($this->status !== 200) { // refused before streaming: one google.rpc.Status
            $this->errBody .= $data;
            return strlen($data);
        }
        $this->buf .= $data;
        while (($i = strpos($this->buf, "\n")) !== false) {
            $line = trim(substr($this->buf, 0, $i));
            $this->buf = substr($this->buf, $i + 1);
            if ($line === '') {
                continue;
            }
            $m = json_decode($line, true);
            if (!is_array($m)) {
                $this->queue[] = new ZkcoordError(ZkcoordError::INTERNAL, "{$this->path}: a line that is not JSON: " . substr($line, 0, 200));
            } elseif (isset($m['error']) && is_array($m['error'])) { // the stream ended with an error
                $this->queue[] = ZkcoordError::fromStatus(200, json_encode($m['error']));
            } else {
                $this->queue[] = $m;
            }
        }
        return strlen($data);
    }

    /** The transfer ended with curl's result $errno. */
    private function finished(int $errno): void
    {
        $ch = $this->ch;
        if ($errno !== 0 && !$this->received && zk_not_connected($ch, $errno)) {
            $err = zk_transport_error($ch, $errno, $this->method, $this->path, $this->timeout);
            $this->close();
            if ($this->zk->failover($this->first, $err->getMessage())) {
                $this->done = false;
                $this->open();
                return;
            }
            $this->queue[] = $err;
            return;
        }
        if ($errno !== 0) {
            $this->queue[] = zk_transport_error($ch, $errno, $this->method, $this->path, $this->timeout);
        } elseif ($this->status !== 200) {
            $this->queue[] = ZkcoordError::fromStatus($this->status, $this->errBody);
        }
        $this->close();
    }
}

/** Whether a failed transfer never reached a gateway (so it is safe to send elsewhere). */
function zk_not_connected(CurlHandle $ch, int $errno): bool
{
    return in_array($errno, [CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT], true)
        || ($errno === CURLE_OPERATION_TIMEDOUT && curl_getinfo($ch, CURLINFO_CONNECT_TIME) == 0.0);
}

function zk_transport_error(CurlHandle $ch, int $errno, string $method, string $path, float $timeout): ZkcoordError
{
    if ($errno === CURLE_OPERATION_TIMEDOUT && curl_getinfo($ch, CURLINFO_CONNECT_TIME) > 0) {
        return new ZkcoordError(ZkcoordError::DEADLINE_EXCEEDED, "$method $path: no answer within {$timeout}s");
    }
    return new ZkcoordError(ZkcoordError::UNAVAILABLE, "$method $path: " . (curl_error($ch) ?: curl_strerror($errno)));
}

/** Seconds in a duration like "30s", "200ms", "1.5m". */
function zk_seconds(string $d): float
{
    if ($d === '0') {
        return 0.0;
    }
    if (!preg_match('/^(\d+(?:\.\d+)?)(ms|s|m|h)$/', $d, $m)) {
        throw new InvalidArgumentException("not a duration: $d (e.g. 30s, 200ms)");
    }
    return (float) $m[1] * ['ms' => 0.001, 's' => 1, 'm' => 60, 'h' => 3600][$m[2]];
}

/**
 * Returns a function that says whether SIGINT or SIGTERM has arrived since:
 * a script that must let go of something (resign, leave) checks it and
 * ends cleanly instead of dying.
 */
function zk_stop_signal(): Closure
{
    $stop = false;
    pcntl_async_signals(true);
    foreach ([SIGINT, SIGTERM] as $sig) {
        pcntl_signal($sig, function () use (&$stop): void { $stop = true; });
    }
    return function () use (&$stop): bool { return $stop; };
}

/**
 * Runs a script: parses --name value / --name=value / --flag options
 * against $defaults (a bool default makes a flag), calls $main with them and
 * a client of ZKCOORD_URL, and exits with its result, or 1 after printing an
 * error to stderr (2 for a usage error).
 *
 * @param callable(array, Zkcoord): int $main
 */
function zk_run(array $defaults, callable $main): never
{
    global $argv;
    $script = basename($argv[0]);
    $opts = $defaults;
    $usage = function (string $why) use ($script, $defaults): never {
        fwrite(STDERR, ($why ? "$script: $why\n" : '') . "usage: php $script" . implode('', array_map(
            fn ($k, $v) => is_bool($v) ? " [--$k]" : " [--$k " . ($v === '' ? '...' : $v) . ']',
            array_keys($defaults), $defaults)) . "\n(gateway: ZKCOORD_URL, default http://127.0.0.1:7071; several comma-separated; ZKCOORD_TOKEN: bearer token)\n");
        exit($why ? 2 : 0);
    };
    for ($i = 1; $i < count($argv); $i++) {
        if (in_array($argv[$i], ['-h', '--help'], true)) {
            $usage('');
        }
        if (!preg_match('/^--([a-z0-9-]+)(?:=(.*))?$/s', $argv[$i], $m) || !array_key_exists($m[1], $defaults)) {
            $usage("unknown argument {$argv[$i]}");
        }
        [$k, $v] = [$m[1], $m[2] ?? null];
        if (is_bool($defaults[$k])) {
            $opts[$k] = $v === null || in_array($v, ['1', 'true'], true);
        } elseif ($v !== null) {
            $opts[$k] = $v;
        } elseif ($i + 1 < count($argv) && !str_starts_with($argv[$i + 1], '--')) {
            $opts[$k] = $argv[++$i];
        } else {
            $usage("--$k needs a value");
        }
        if (is_int($defaults[$k]) && !is_bool($defaults[$k])) {
            if (!preg_match('/^-?\d+$/', (string) $opts[$k])) {
                $usage("--$k takes a number");
            }
            $opts[$k] = (int) $opts[$k];
        }
    }
    try {
        exit((int) $main($opts, Zkcoord::fromEnv()));
    } catch (ZkcoordError $e) {
        fwrite(STDERR, "$script: {$e->codeName()}: {$e->getMessage()}\n");
    } catch (InvalidArgumentException $e) {
        $usage($e->getMessage());
    }
    exit(1);
}

// zkcoord.js: what the three examples share. It loads zkcoord's protos
// from the repository's proto/ at run time (no generated code) and connects
// to a gateway.
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import util from 'node:util';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const definition = protoLoader.loadSync(
  ['zkcoord/v1/lease.proto', 'zkcoord/v1/registry.proto', 'zkcoord/v1/election.proto'],
  {
    includeDirs: [fileURLToPath(new URL('../../proto', import.meta.url))],
    longs: String, // int64 revisions and fencing tokens as decimal strings: no precision lost
    enums: String, // 'STATUS_ELECTED', 'TYPE_JOINED', ...
    defaults: true, // absent fields read as their defaults (more: false, position: 0)
  },
);
const v1 = grpc.loadPackageDefinition(definition).zkcoord.v1;

export const { status } = grpc;

// The codes worth retrying: the gateway is unreachable, restarting or busy.
// Anything else (INVALID_ARGUMENT, PERMISSION_DENIED, ...) will not change.
export const RETRYABLE = new Set([
  status.UNAVAILABLE, status.RESOURCE_EXHAUSTED, status.ABORTED, status.INTERNAL,
]);

// connect returns a client for each service of the gateway at addr (no TLS,
// as `make run` serves), sharing one connection. Unary methods return a
// promise of their response; streaming methods return grpc-js streams,
// which are async iterables.
export function connect(addr) {
  const creds = grpc.credentials.createInsecure();
  const lease = new v1.LeaseService(addr, creds);
  const opts = { channelOverride: lease.getChannel() };
  return {
    lease: promisify(lease),
    registry: promisify(new v1.RegistryService(addr, creds, opts)),
    election: promisify(new v1.ElectionService(addr, creds, opts)),
    close: () => lease.close(),
  };
}

// promisify returns client's methods, the unary ones made to return a promise.
function promisify(client) {
  const methods = {};
  for (const [name, m] of Object.entries(client.constructor.service)) {
    const method = client[name].bind(client);
    methods[name] = m.requestStream || m.responseStream ? method : util.promisify(method);
  }
  return methods;
}

// seconds turns a number of seconds into a google.protobuf.Duration.
export function seconds(s) {
  return { seconds: Math.trunc(s), nanos: Math.round((s % 1) * 1e9) };
}

// codeName names a gRPC status code: 14 is 'UNAVAILABLE'.
export function codeName(code) {
  return status[code] ?? `code ${code}`;
}

// Backoff spaces out retries: exponential from 100 ms to 5 s, jittered so
// that clients do not retry in step. Reset it after progress.
export class Backoff {
  #max = 0.1;

  // next returns the seconds to wait before the next retry.
  next() {
    const d = this.#max * (0.5 + Math.random() / 2);
    this.#max = Math.min(this.#max * 2, 5);
    return d;
  }

  reset() {
    this.#max = 0.1;
  }
}

// pause waits s seconds, or until signal aborts; it returns false then.
export async function pause(s, signal) {
  try {
    await sleep(s * 1000, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

// onSignals returns an AbortSignal that SIGINT (Ctrl-C) or SIGTERM aborts,
// with the signal's name as its reason.
export function onSignals() {
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => stop.abort(sig));
  }
  return stop.signal;
}

// defaultAddr is the gateway's address: --addr, else $ZKCOORD_ADDR, else localhost:7070.
export const defaultAddr = process.env.ZKCOORD_ADDR || 'localhost:7070';

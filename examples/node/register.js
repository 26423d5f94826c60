// register.js: joins a group under a lease of its own and stays until
// Ctrl-C (or SIGTERM), keeping the lease alive in the background; then it
// revokes the lease, and the member leaves at once. If the lease ends while
// the program runs (it was paused longer than the TTL, say), it grants a new
// lease and registers again.
//
//   node examples/node/register.js --group web --id w1 --value 10.0.0.1:80 --ttl 10
import { parseArgs } from 'node:util';
import {
  Backoff, RETRYABLE, codeName, connect, defaultAddr, onSignals, pause, seconds, status,
} from './zkcoord.js';

const { values: opts } = parseArgs({
  options: {
    addr: { type: 'string', default: defaultAddr },
    group: { type: 'string', default: 'web' },
    id: { type: 'string', default: 'w1' },
    value: { type: 'string', default: '10.0.0.1:80' },
    ttl: { type: 'string', default: '10' }, // seconds
  },
});
const ttl = Number(opts.ttl);
const zk = connect(opts.addr);
const stop = onSignals();
let leaseId = null; // the lease that owns the member; null while none does
const backoff = new Backoff();

// join grants a lease and registers the member under it.
async function join() {
  const lease = await zk.lease.Grant({ ttl: seconds(ttl) });
  const reg = await zk.registry.Register({
    group: opts.group,
    memberId: opts.id,
    value: opts.value,
    leaseId: lease.leaseId,
  });
  leaseId = lease.leaseId;
  const member = `${opts.group}/${opts.id} = ${opts.value}`;
  console.log(`registered ${member} at revision ${reg.revision}, with a ${ttl}s lease`);
}

// renew keeps leaseId alive on one KeepAliveStream, sending a keepalive
// every third of the TTL, until stop aborts (it then closes its side and
// the gateway ends the stream) or the stream fails.
async function renew() {
  const stream = zk.lease.KeepAliveStream();
  const send = () => stream.write({ leaseId });
  const timer = setInterval(send, (ttl * 1000) / 3);
  const close = () => {
    clearInterval(timer);
    stream.end();
  };
  stop.addEventListener('abort', close);
  send();
  try {
    for await (const _ of stream) {
      backoff.reset(); // each answer is a renewal
    }
  } finally {
    stop.removeEventListener('abort', close);
    clearInterval(timer);
  }
}

// keepAlive runs until stop aborts: it joins, renews the lease, and on
// NOT_FOUND (the lease ended) joins again with a new one. Transient errors
// are retried with backoff; others are thrown.
async function keepAlive() {
  while (!stop.aborted) {
    let why;
    try {
      if (leaseId === null) {
        await join();
      }
      await renew();
      if (stop.aborted) {
        return;
      }
      why = 'the gateway ended the stream';
    } catch (err) {
      if (stop.aborted) {
        return;
      }
      if (err.code === status.NOT_FOUND) {
        console.log('lease ended (NOT_FOUND): registering again');
        leaseId = null;
        continue;
      }
      if (!RETRYABLE.has(err.code)) {
        throw err;
      }
      why = `${codeName(err.code)} (${err.details})`;
    }
    const d = backoff.next();
    const what = leaseId === null ? 'register' : 'keepalive';
    console.log(`${what}: ${why}; retrying in ${d.toFixed(1)}s`);
    await pause(d, stop);
  }
}

// leave revokes the lease: everything it owns is removed at once, rather
// than when its TTL would lapse.
async function leave() {
  if (leaseId === null) {
    return;
  }
  try {
    const r = await zk.lease.Revoke({ leaseId });
    console.log(`revoked the lease: ${opts.group}/${opts.id} left at revision ${r.revision}`);
  } catch (err) {
    const why = `${codeName(err.code)}: ${err.details}`;
    console.log(`revoke: ${why}; the member leaves when the lease's TTL lapses`);
  }
}

try {
  await keepAlive();
  await leave();
} catch (err) {
  console.error(`register: ${codeName(err.code)}: ${err.details ?? err.message}`);
  process.exitCode = 1;
} finally {
  zk.close();
}

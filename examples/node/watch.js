// watch.js: watches a group until Ctrl-C (or SIGTERM): prints its snapshot,
// then each change with the members after it. A change made in one
// transaction (a lease's end removing all its members, say) arrives as
// several messages of one revision, all but the last marked `more`: they
// are applied together and printed as one line. If the stream breaks, the
// watch resumes after the last complete revision, missing nothing.
//
//   node examples/node/watch.js --group web
import { parseArgs } from 'node:util';
import { Backoff, RETRYABLE, codeName, connect, defaultAddr, onSignals, pause } from './zkcoord.js';

const { values: opts } = parseArgs({
  options: {
    addr: { type: 'string', default: defaultAddr },
    group: { type: 'string', default: 'web' },
  },
});

// GroupView holds a group's members as of its last complete revision.
class GroupView {
  members = null; // Map of id to Member; null before the first snapshot
  revision = '0';
  pending = []; // the messages of a revision not yet complete
  snapshot = null; // Map of id to Member: the pages of a snapshot so far
  snapshotRevision = '0';

  // resumeFrom is the start_revision of the next watch: the last complete
  // revision, or 0 (start with a snapshot) before the first snapshot.
  resumeFrom() {
    return this.members === null ? '0' : this.revision;
  }

  // apply takes one message; once it completes a revision, it applies the
  // revision's changes and returns a line describing them, else null.
  apply(msg) {
    if (msg.type === 'TYPE_SNAPSHOT') {
      // A large group's snapshot comes in pages (snapshotPageSize), all of
      // one revision, all but the last marked more.
      if (this.snapshot === null || this.snapshotRevision !== msg.revision) {
        this.snapshot = new Map();
        this.snapshotRevision = msg.revision;
        this.pending = [];
      }
      for (const m of msg.members) {
        this.snapshot.set(m.id, m);
      }
      if (msg.more) {
        return null; // more pages of this snapshot follow
      }
      this.members = this.snapshot;
      this.revision = msg.revision;
      this.snapshot = null;
      this.pending = [];
      return this.describe(msg.resync ? 'snapshot (resync)' : 'snapshot');
    }
    this.pending.push(msg);
    if (msg.more) {
      return null; // more messages of this revision follow
    }
    for (const m of this.pending) {
      if (m.type === 'TYPE_LEFT') {
        this.members.delete(m.member.id);
      } else {
        this.members.set(m.member.id, m.member); // TYPE_JOINED, TYPE_UPDATED
      }
    }
    const what = this.pending.map((m) => {
      const type = m.type.replace('TYPE_', '').toLowerCase(); // joined, left, updated
      return `${type} ${m.member.id}`;
    });
    this.revision = msg.revision;
    this.pending = [];
    return this.describe(what.join(', '));
  }

  describe(what) {
    const members = [...this.members.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((m) => `${m.id}=${m.value}`);
    return `revision ${this.revision}: ${what}; members [${members.join(' ')}]`;
  }
}

const zk = connect(opts.addr);
const stop = onSignals();
const view = new GroupView();
const backoff = new Backoff();
try {
  while (!stop.aborted) {
    view.pending = []; // a revision received in part is received again
    view.snapshot = null;
    const call = zk.registry.WatchGroup({ group: opts.group, startRevision: view.resumeFrom(), snapshotPageSize: 10000 });
    const cancel = () => call.cancel();
    stop.addEventListener('abort', cancel);
    let why = 'the gateway ended the stream';
    try {
      for await (const msg of call) {
        backoff.reset();
        const line = view.apply(msg);
        if (line !== null) {
          console.log(line);
        }
      }
    } catch (err) {
      if (stop.aborted) {
        break; // cancelled by Ctrl-C
      }
      if (!RETRYABLE.has(err.code)) {
        throw err;
      }
      why = `${codeName(err.code)} (${err.details})`;
    } finally {
      stop.removeEventListener('abort', cancel);
    }
    const d = backoff.next();
    const from = view.resumeFrom();
    console.log(`watch broke: ${why}; resuming after revision ${from} in ${d.toFixed(1)}s`);
    await pause(d, stop);
  }
} catch (err) {
  console.error(`watch: ${codeName(err.code)}: ${err.details ?? err.message}`);
  process.exitCode = 1;
} finally {
  zk.close();
}

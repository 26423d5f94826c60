// campaign.js: campaigns in an election and prints the candidate's state:
// QUEUED (how many are ahead), then ELECTED with the term's fencing token.
// It resigns on Ctrl-C (or SIGTERM), or after leading --lead seconds; the
// next candidate is then elected at once, with a higher token.
//
// The candidacy belongs to the Campaign stream (no lease_id): if the stream
// breaks, the candidacy is withdrawn, so the program campaigns again, and
// if it was leading it must stop acting as leader until ELECTED comes again.
//
//   node examples/node/campaign.js --election cron --id a            # terminal 1: leads
//   node examples/node/campaign.js --election cron --id b            # terminal 2: queued
//   Ctrl-C in terminal 1: b is elected.
import { parseArgs } from 'node:util';
import {
  Backoff, RETRYABLE, codeName, connect, defaultAddr, onSignals, pause, status,
} from './zkcoord.js';

const { values: opts } = parseArgs({
  options: {
    addr: { type: 'string', default: defaultAddr },
    election: { type: 'string', default: 'cron' },
    id: { type: 'string', default: 'a' }, // the value published while leading
    lead: { type: 'string' }, // seconds; default: until Ctrl-C
  },
});

const zk = connect(opts.addr);
const stop = onSignals();
const backoff = new Backoff();
let timer; // the --lead timer, set once elected

// campaign runs one Campaign stream until it ends: with RESIGNED after a
// resign (true), with LOST (false), or with an error (thrown).
async function campaign() {
  const call = zk.election.Campaign({ election: opts.election, value: opts.id });
  let leaseId = null; // the stream's own lease, from its first message
  let resigning = false;

  // resign withdraws the candidacy: the stream then ends with RESIGNED.
  // Before the first message there is nothing to resign: cancelling the
  // stream withdraws the candidacy.
  const resign = async () => {
    if (resigning) {
      return;
    }
    resigning = true;
    clearTimeout(timer);
    console.log(`resigning (${stop.reason ?? `led ${opts.lead}s`})`);
    if (leaseId === null) {
      call.cancel();
      return;
    }
    try {
      await zk.election.Resign({ election: opts.election, leaseId });
    } catch (err) {
      console.log(`resign: ${codeName(err.code)}: ${err.details}; ending the stream instead`);
      call.cancel();
    }
  };
  const onStop = () => resign();
  stop.addEventListener('abort', onStop);
  try {
    for await (const resp of call) {
      leaseId = resp.leaseId;
      backoff.reset();
      switch (resp.status) {
        case 'STATUS_QUEUED': {
          const { leader } = resp;
          const who = leader ? `; leader ${leader.value} (token ${leader.fencingToken})` : '';
          console.log(`QUEUED: ${resp.position} ahead${who}`);
          break;
        }
        case 'STATUS_ELECTED':
          console.log(`ELECTED: fencing token ${resp.fencingToken}`);
          if (opts.lead !== undefined && timer === undefined) {
            timer = setTimeout(resign, Number(opts.lead) * 1000);
          }
          break;
        case 'STATUS_JEOPARDY': {
          const deadline = new Date(Number(resp.jeopardyDeadline.seconds) * 1000).toISOString();
          console.log(`JEOPARDY: the gateway lost ZooKeeper; stop leading by ${deadline}`
            + ' unless ELECTED again');
          break;
        }
        case 'STATUS_LOST':
          console.log(`LOST: the term ended without a resign (token ${resp.fencingToken})`);
          return false;
        case 'STATUS_RESIGNED':
          console.log('RESIGNED');
          return true;
      }
    }
    return stop.aborted; // cancelled before the first message
  } catch (err) {
    if (stop.aborted && err.code === status.CANCELLED) {
      return true;
    }
    throw err;
  } finally {
    stop.removeEventListener('abort', onStop);
    clearTimeout(timer);
  }
}

try {
  for (;;) {
    try {
      process.exitCode = (await campaign()) ? 0 : 1;
      break;
    } catch (err) {
      if (stop.aborted || !RETRYABLE.has(err.code)) {
        throw err;
      }
      // The candidacy ended with the stream: no longer a candidate, let
      // alone the leader.
      const d = backoff.next();
      const why = `${codeName(err.code)} (${err.details})`;
      console.log(`campaign broke: ${why}; campaigning again in ${d.toFixed(1)}s`);
      timer = undefined;
      if (!(await pause(d, stop))) {
        break;
      }
    }
  }
} catch (err) {
  console.error(`campaign: ${codeName(err.code)}: ${err.details ?? err.message}`);
  process.exitCode = 1;
} finally {
  zk.close();
}

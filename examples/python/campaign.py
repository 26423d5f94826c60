"""Campaign in an election, printing the candidate's state.

QUEUED (how many are ahead), then ELECTED with the term's fencing token. It
resigns on Ctrl-C (or SIGTERM), or after leading --lead seconds; the next
candidate is then elected at once, with a higher token. A second Ctrl-C
quits without waiting: closing the stream withdraws the candidacy too.

The candidacy belongs to the Campaign stream (no lease_id): if the stream
breaks, the candidacy is withdrawn, so the program campaigns again, and if it
was leading it must stop acting as leader until ELECTED comes again.

With the stubs generated into examples/python/gen (see examples/README.md):

    export PYTHONPATH=examples/python/gen
    /usr/bin/python3 examples/python/campaign.py --election cron --id a   # terminal 1: leads
    /usr/bin/python3 examples/python/campaign.py --election cron --id b   # terminal 2: queued
    Ctrl-C in terminal 1: b is elected.
"""

import argparse
import queue
import signal
import sys
import threading
import time

import grpc

from zkcoord.v1 import election_pb2, election_pb2_grpc

from example import RETRYABLE, Backoff, add_addr_argument

Response = election_pb2.CampaignResponse


class Stop(Exception):
    """Raised in the main thread by SIGINT or SIGTERM: resign."""


def stop_on_signal(signum, frame):
    raise Stop(signal.Signals(signum).name)


def show(resp):
    """Prints a candidate's state."""
    if resp.status == Response.STATUS_QUEUED:
        leader = ""
        if resp.HasField("leader"):
            leader = f"; leader {resp.leader.value} (token {resp.leader.fencing_token})"
        print(f"QUEUED: {resp.position} ahead{leader}")
    elif resp.status == Response.STATUS_ELECTED:
        print(f"ELECTED: fencing token {resp.fencing_token}")
    elif resp.status == Response.STATUS_JEOPARDY:
        deadline = resp.jeopardy_deadline.ToJsonString()
        print(f"JEOPARDY: the gateway lost ZooKeeper; stop leading by {deadline}"
              " unless ELECTED again")
    elif resp.status == Response.STATUS_LOST:
        print(f"LOST: the term ended without a resign (token {resp.fencing_token})")
    elif resp.status == Response.STATUS_RESIGNED:
        print("RESIGNED")


def campaign(elections, election, value, lead):
    """Runs one Campaign stream until it ends: returns True after resigning,
    False when the candidacy was LOST; raises grpc.RpcError on an error.

    A thread reads the stream; this one waits for its messages, for Ctrl-C,
    or for the end of the --lead time, and resigns.
    """
    call = elections.Campaign(election_pb2.CampaignRequest(election=election, value=value))
    states = queue.Queue()
    threading.Thread(target=read, args=(call, states), daemon=True).start()
    lease_id = None  # the stream's own lease, from its first message
    resign_at = None  # when to resign: --lead seconds after ELECTED
    try:
        while True:
            timeout = None if resign_at is None else max(0, resign_at - time.monotonic())
            resp = next_state(states, timeout)
            if resp is None:
                return True  # the stream ended, after RESIGNED
            lease_id = resp.lease_id
            show(resp)
            if resp.status == Response.STATUS_ELECTED and lead is not None and resign_at is None:
                resign_at = time.monotonic() + lead
            elif resp.status == Response.STATUS_LOST:
                return False
    except queue.Empty:
        why = f"led {lead}s"
    except Stop as sig:
        why = sig
    print(f"resigning ({why})")
    if lease_id is None:  # nothing to resign yet: ending the stream withdraws the candidacy
        call.cancel()
        return True
    elections.Resign(election_pb2.ResignRequest(election=election, lease_id=lease_id))
    while (resp := next_state(states)) is not None:  # RESIGNED, then the stream ends
        show(resp)
    return True


def read(call, states):
    """Puts each message of the stream into states, then None at its end, or
    the error that ended it."""
    try:
        for resp in call:
            states.put(resp)
        states.put(None)
    except grpc.RpcError as err:
        states.put(err)


def next_state(states, timeout=None):
    """Returns the stream's next message, None at its end; raises the error
    that ended it, or queue.Empty after timeout seconds."""
    item = states.get(timeout=timeout)
    if isinstance(item, grpc.RpcError):
        raise item
    return item


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_addr_argument(parser)
    parser.add_argument("--election", default="cron", help="election to enter")
    parser.add_argument("--id", default="a", help="the value published while leading")
    parser.add_argument(
        "--lead", type=float, help="resign after leading this many seconds (default: until Ctrl-C)"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each line as it happens, even into a pipe
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_on_signal)

    with grpc.insecure_channel(args.addr) as channel:
        elections = election_pb2_grpc.ElectionServiceStub(channel)
        backoff = Backoff()
        while True:
            try:
                resigned = campaign(elections, args.election, args.id, args.lead)
                sys.exit(0 if resigned else 1)
            except Stop:
                # A signal outside the wait (a second one while resigning,
                # say): quit at once. Closing the channel ends the stream,
                # which withdraws the candidacy.
                sys.exit(1)
            except grpc.RpcError as err:
                if err.code() not in RETRYABLE:
                    sys.exit(f"campaign: {err.code().name}: {err.details()}")
                # The candidacy ended with the stream: no longer a candidate,
                # let alone the leader.
                wait = backoff.next()
                print(
                    f"campaign broke: {err.code().name} ({err.details()});"
                    f" campaigning again in {wait:.1f}s"
                )
                try:
                    time.sleep(wait)
                except Stop:
                    sys.exit(0)


if __name__ == "__main__":
    main()

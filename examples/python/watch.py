"""Watch a group until Ctrl-C (or SIGTERM).

Prints the group's snapshot, then each change with the members after it. A
change made in one transaction (a lease's end removing all its members, say)
arrives as several messages of one revision, all but the last marked
`more`: they are applied together and printed as one line. The snapshot of
a large group comes in pages the same way (snapshot_page_size): all of one
revision, all but the last marked `more`. If the stream breaks, the watch
resumes after the last complete revision, missing nothing.

With the stubs generated into examples/python/gen (see examples/README.md):

    PYTHONPATH=examples/python/gen /usr/bin/python3 examples/python/watch.py --group web
"""

import argparse
import signal
import sys
import threading

import grpc

from zkcoord.v1 import registry_pb2, registry_pb2_grpc

from example import RETRYABLE, Backoff, add_addr_argument

Response = registry_pb2.WatchGroupResponse


class GroupView:
    """A group's members as of its last complete revision."""

    def __init__(self):
        self.members = None  # id -> Member; None before the first snapshot
        self.revision = 0
        self.pending = []  # the messages of a revision not yet complete
        self.snapshot = None  # id -> Member: the pages of a snapshot so far
        self.snapshot_revision = 0

    def resume_from(self):
        """The start_revision of the next watch: the last complete revision,
        or 0 (start with a snapshot) before the first snapshot."""
        return 0 if self.members is None else self.revision

    def apply(self, msg):
        """Takes one message; once it completes a revision, applies the
        revision's changes and returns a line describing them, else None."""
        if msg.type == Response.TYPE_SNAPSHOT:
            if self.snapshot is None or self.snapshot_revision != msg.revision:
                self.snapshot, self.snapshot_revision, self.pending = {}, msg.revision, []
            self.snapshot.update((m.id, m) for m in msg.members)
            if msg.more:
                return None  # more pages of this snapshot follow
            self.members, self.revision = self.snapshot, msg.revision
            self.snapshot, self.pending = None, []
            return self.describe("snapshot (resync)" if msg.resync else "snapshot")
        self.pending.append(msg)
        if msg.more:
            return None  # more messages of this revision follow
        for m in self.pending:
            if m.type == Response.TYPE_LEFT:
                self.members.pop(m.member.id, None)
            else:  # TYPE_JOINED, TYPE_UPDATED
                self.members[m.member.id] = m.member
        what = ", ".join(
            f"{Response.Type.Name(m.type).removeprefix('TYPE_').lower()} {m.member.id}"
            for m in self.pending
        )
        self.revision = msg.revision
        self.pending = []
        return self.describe(what)

    def describe(self, what):
        members = " ".join(f"{id}={m.value}" for id, m in sorted(self.members.items()))
        return f"revision {self.revision}: {what}; members [{members}]"


class Watch:
    """Watches a group for ever on a thread of its own, resuming after each
    transient failure, until close(). The main thread only waits: a signal
    (Ctrl-C) interrupts that wait, never gRPC's own code."""

    def __init__(self, registry, group):
        self.registry, self.group = registry, group
        self.done = threading.Event()  # the watch is over
        self.failed = None  # the error that ended it, if not close()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._call = None

    def start(self):
        threading.Thread(target=self._run, daemon=True).start()

    def close(self):
        """Ends the watch: cancels the stream under way."""
        self._stop.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def _run(self):
        try:
            self._watch()
        except grpc.RpcError as err:
            if not self._stop.is_set():
                self.failed = err
        finally:
            self.done.set()

    def _watch(self):
        view = GroupView()
        backoff = Backoff()
        while not self._stop.is_set():
            view.pending, view.snapshot = [], None  # a revision received in part is received again
            request = registry_pb2.WatchGroupRequest(
                group=self.group, start_revision=view.resume_from(), snapshot_page_size=10000
            )
            with self._lock:
                if self._stop.is_set():
                    return
                self._call = self.registry.WatchGroup(request)
            try:
                for msg in self._call:
                    backoff.reset()
                    line = view.apply(msg)
                    if line is not None:
                        print(line)
                why = "the gateway ended the stream"
            except grpc.RpcError as err:
                if self._stop.is_set():
                    return
                if err.code() not in RETRYABLE:
                    raise
                why = f"{err.code().name} ({err.details()})"
            wait = backoff.next()
            print(f"watch broke: {why}; resuming after revision {view.resume_from()} in {wait:.1f}s")
            self._stop.wait(wait)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_addr_argument(parser)
    parser.add_argument("--group", default="web", help="group to watch")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each line as it happens, even into a pipe
    for sig in (signal.SIGINT, signal.SIGTERM):  # either raises KeyboardInterrupt, as Ctrl-C does
        signal.signal(sig, signal.default_int_handler)

    with grpc.insecure_channel(args.addr) as channel:
        w = Watch(registry_pb2_grpc.RegistryServiceStub(channel), args.group)
        w.start()
        try:
            w.done.wait()  # until Ctrl-C, or an error that retrying cannot cure
        except KeyboardInterrupt:
            pass
        finally:
            w.close()
            w.done.wait()
        if w.failed is not None:
            sys.exit(f"watch: {w.failed.code().name}: {w.failed.details()}")


if __name__ == "__main__":
    main()

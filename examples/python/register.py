"""Join a group under a lease and stay until Ctrl-C (or SIGTERM).

A background thread keeps the lease alive; on exit the program revokes the
lease, and the member leaves at once. If the lease ends while the program
runs (it was paused longer than the TTL, say), it grants a new lease and
registers again.

With the stubs generated into examples/python/gen (see examples/README.md):

    PYTHONPATH=examples/python/gen /usr/bin/python3 examples/python/register.py \\
        --group web --id w1 --value 10.0.0.1:80 --ttl 10
"""

import argparse
import signal
import sys
import threading

import grpc
from google.protobuf.duration_pb2 import Duration

from zkcoord.v1 import lease_pb2, lease_pb2_grpc, registry_pb2, registry_pb2_grpc

from example import RETRYABLE, Backoff, add_addr_argument

class Member:
    """A member of a group, owned by a lease of its own.

    start() registers it and keeps its lease alive in a thread, registering
    it again under a new lease if the lease ends; close() stops the thread
    and revokes the lease.
    """

    def __init__(self, channel, group, member_id, value, ttl):
        self.leases = lease_pb2_grpc.LeaseServiceStub(channel)
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)
        self.group, self.id, self.value, self.ttl = group, member_id, value, ttl
        self.lease_id = None  # None while no lease owns the member
        self.failed = None  # the error that ended the keepalive thread
        self.done = threading.Event()  # set when the thread ends by itself
        self._stop = threading.Event()
        self._stream = None
        self._thread = threading.Thread(target=self._keep_alive, name="keepalive")

    def _join(self):
        """Grants a lease and registers the member under it."""
        lease = self.leases.Grant(lease_pb2.GrantRequest(ttl=Duration(seconds=self.ttl)))
        reg = self.registry.Register(
            registry_pb2.RegisterRequest(
                group=self.group, member_id=self.id, value=self.value, lease_id=lease.lease_id
            )
        )
        self.lease_id = lease.lease_id
        print(
            f"registered {self.group}/{self.id} = {self.value} at revision {reg.revision},"
            f" with a {self.ttl}s lease"
        )

    def start(self):
        self._thread.start()

    def close(self):
        """Stops the keepalives and revokes the lease: the member leaves."""
        # The keepalive requests end at once, and with them the stream (the
        # gateway answers the last one, then closes). No cancel() first:
        # once, a Ctrl-C just after a new stream was opened left the
        # keepalive thread's read blocked and join() with it (our guess:
        # grpc/grpc#20562, a read that blocks while another thread shuts
        # the stream down); cancel() only if the gateway does not end it.
        self._stop.set()
        self._thread.join(timeout=self.ttl)
        if self._thread.is_alive() and self._stream is not None:
            self._stream.cancel()  # the gateway did not end it: unreachable?
            self._thread.join()
        if self.lease_id is None:
            return
        try:
            r = self.leases.Revoke(lease_pb2.RevokeRequest(lease_id=self.lease_id))
        except grpc.RpcError as err:
            print(
                f"revoke: {err.code().name}: {err.details()};"
                " the member leaves when the lease's TTL lapses"
            )
            return
        print(f"revoked the lease: {self.group}/{self.id} left at revision {r.revision}")

    def _keepalives(self):
        """The requests of a KeepAliveStream: one each third of the TTL."""
        while True:
            yield lease_pb2.KeepAliveStreamRequest(lease_id=self.lease_id)
            if self._stop.wait(self.ttl / 3):
                return  # closing our side ends the stream

    def _keep_alive(self):
        """Registers, then renews the lease until close(); registers again
        under a new lease when the lease has ended."""
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                if self.lease_id is None:
                    self._join()
                self._stream = self.leases.KeepAliveStream(self._keepalives())
                for _ in self._stream:
                    backoff.reset()  # each answer is a renewal
                why = "the gateway ended the stream"
            except grpc.RpcError as err:
                if self._stop.is_set():
                    return
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    print("lease ended (NOT_FOUND): registering again")
                    self.lease_id = None
                    continue
                if err.code() not in RETRYABLE:
                    self.failed = err
                    self.done.set()
                    return
                why = f"{err.code().name} ({err.details()})"
            if self._stop.is_set():
                return
            wait = backoff.next()
            what = "register" if self.lease_id is None else "keepalive"
            print(f"{what}: {why}; retrying in {wait:.1f}s")
            self._stop.wait(wait)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_addr_argument(parser)
    parser.add_argument("--group", default="web", help="group to join")
    parser.add_argument("--id", default="w1", help="member ID")
    parser.add_argument("--value", default="10.0.0.1:80", help="member value, an endpoint say")
    parser.add_argument("--ttl", type=int, default=10, help="lease TTL in seconds")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each line as it happens, even into a pipe
    for sig in (signal.SIGINT, signal.SIGTERM):  # either raises KeyboardInterrupt, as Ctrl-C does
        signal.signal(sig, signal.default_int_handler)

    with grpc.insecure_channel(args.addr) as channel:
        member = Member(channel, args.group, args.id, args.value, args.ttl)
        member.start()
        try:
            member.done.wait()  # until Ctrl-C, or an error that retrying cannot cure
        except KeyboardInterrupt:
            pass
        finally:
            member.close()
        if member.failed is not None:
            sys.exit(f"register: {member.failed.code().name}: {member.failed.details()}")


if __name__ == "__main__":
    main()

"""What the Python examples share: where the gateway is (--addr), which
gRPC codes are worth retrying, and how long to wait before the next try.
Everything an example teaches about zkcoord stays in the example."""

import os
import random

import grpc

# The codes worth retrying: the gateway is unreachable, restarting or busy
# (RESOURCE_EXHAUSTED: a watcher that fell too far behind, or a limit).
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
}


def add_addr_argument(parser):
    """Adds --addr, the gateway's gRPC address: $ZKCOORD_ADDR when set,
    else localhost:7070 (where `make run` serves)."""
    parser.add_argument(
        "--addr",
        default=os.environ.get("ZKCOORD_ADDR", "localhost:7070"),
        help="gateway address (default: $ZKCOORD_ADDR or localhost:7070)",
    )


class Backoff:
    """Waits before a retry: from 0.1 s, doubling up to 5 s, each wait a
    random half to whole of the step, so that clients a failure hit
    together do not come back together."""

    def __init__(self, first=0.1, most=5.0):
        self._first, self._most = first, most
        self._step = first

    def reset(self):
        """After a success: the next failure waits the shortest again."""
        self._step = self._first

    def next(self):
        """The wait before the next try, in seconds."""
        wait = self._step * random.uniform(0.5, 1)
        self._step = min(self._step * 2, self._most)
        return wait

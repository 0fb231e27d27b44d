"""Clients that dawdle: sockets fed a few bytes now and then from a background thread."""

import contextlib
import threading
from collections.abc import Iterator, Sequence

__all__ = ["dripping"]


@contextlib.contextmanager
def dripping(socks: Sequence, data: bytes, every: float) -> Iterator[None]:
    """Send `data` on every socket each `every` seconds while the block runs."""
    stop = threading.Event()

    def drip():
        while not stop.wait(every):
            for sock in socks:
                with contextlib.suppress(OSError):  # the server closed it: expected
                    sock.sendall(data)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)

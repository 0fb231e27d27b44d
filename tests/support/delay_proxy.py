"""A TCP proxy on a free loopback port that can make what is behind it slow or refuse.

    proxy = DelayProxy(upstream_port).start()   # clients connect to proxy.port
    proxy.delay = 3.0       # every answer arrives 3 s after the upstream sent it
    proxy.refuse()          # the port refuses connections (as if nothing listened)
    proxy.listen()          # and accepts them again, on the same port

Answers are delayed, not requests: a client sees a slow server, whose work (a blocking
query's wait, say) starts on time. Each chunk leaves `delay` after it arrived, so a
response in several chunks is late once, not once per chunk.
"""

import queue
import socket
import threading
import time

CHUNK = 65536


class DelayProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.host = host
        self.delay = 0.0
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "DelayProxy":
        self.listen()
        return self

    def listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))  # port 0 the first time: a free one
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def refuse(self) -> None:
        """Stop listening and drop every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            close(conn)

    def stop(self) -> None:
        self.refuse()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # refused or stopped
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.update((client, upstream))
        threading.Thread(
            target=pump, args=(client, upstream, lambda: 0.0), daemon=True
        ).start()
        threading.Thread(
            target=pump, args=(upstream, client, lambda: self.delay), daemon=True
        ).start()


def pump(source: socket.socket, sink: socket.socket, delay) -> None:
    """Copy source to sink, each chunk `delay()` seconds after it arrived; close both at
    the end of either side."""
    chunks: queue.Queue = queue.Queue()

    def send() -> None:
        while (item := chunks.get()) is not None:
            due, data = item
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                sink.sendall(data)
            except OSError:
                break
        close(sink)
        close(source)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        while data := source.recv(CHUNK):
            chunks.put((time.monotonic() + delay(), data))
    except OSError:
        pass
    chunks.put(None)


def close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()

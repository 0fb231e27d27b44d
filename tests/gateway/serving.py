"""The gateway's server in the test process: an app served on a free loopback port by an
event loop in a daemon thread, and a client that sends request targets exactly as given."""

import asyncio
import http.client
import json
import threading

import uvloop

__all__ = ["Client", "Served", "serve"]


class Served:
    def __init__(self, app, loop, server, listener):
        self.app, self.loop, self.server, self.listener = app, loop, server, listener
        self.port = listener.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, coroutine, timeout: float = 10.0):
        """Run `coroutine` on the server's loop; its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        async def close():
            self.listener.close()
            self.app.forwarder.upstream.close()
            for connection in list(self.server.connections):
                connection.transport.abort()

        self.call(close())
        self.loop.call_soon_threadsafe(self.loop.stop)


def serve(app) -> Served:
    """`app` (gateway.app.Gateway) behind gateway.server, on 127.0.0.1 and a free port."""
    loop = uvloop.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = app.server()

    async def listen():
        loop = asyncio.get_running_loop()
        return await loop.create_server(server, "127.0.0.1", 0, backlog=1024)

    listener = asyncio.run_coroutine_threadsafe(listen(), loop).result(10)
    return Served(app, loop, server, listener)


class Answer:
    def __init__(self, response: http.client.HTTPResponse):
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive
        self.content = response.read()

    def json(self):
        return json.loads(self.content)

    @property
    def mimetype(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0]


class Client:
    """One kept-alive connection; the target goes out byte for byte (no normalisation)."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def open(self, path, method="GET", data=None, headers=None) -> Answer:
        self.connection.request(method, path, body=data, headers=headers or {})
        return Answer(self.connection.getresponse())

    def get(self, path, headers=None) -> Answer:
        return self.open(path, "GET", headers=headers)

    def head(self, path, headers=None) -> Answer:
        return self.open(path, "HEAD", headers=headers)

    def post(self, path, data=b"", headers=None) -> Answer:
        return self.open(path, "POST", data, headers)

    def close(self) -> None:
        self.connection.close()

"""One run of an HTTP or TCP check, with Consul's status rules and output texts.

Outputs copy Go's wording (``dial tcp 127.0.0.1:9: connect: connection refused``)
because people and tools grep check output.
"""

import http.client
import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

from devconsul.definitions import CheckDefinition

OUTPUT_MAX = 4096
_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 10


def http_status(code: int) -> str:
    if 200 <= code < 300:
        return "passing"
    if code == 429:
        return "warning"
    return "critical"


def http_probe(check: CheckDefinition, timeout: float) -> tuple[str, str]:
    method = check.method or "GET"
    try:
        response_line, body = _fetch(check, method, timeout)
    except Exception as exc:  # noqa: BLE001 - any transport failure is a critical result
        op = method[:1].upper() + method[1:].lower()
        return "critical", f'{op} "{check.http}": {_go_error(check.http, exc)}'
    code, reason = response_line
    output = f"HTTP {method} {check.http}: {code} {reason} Output: {body}"
    return http_status(code), output


def _fetch(check: CheckDefinition, method: str, timeout: float):
    deadline = time.monotonic() + timeout
    url, body = check.http, check.body.encode()
    for _ in range(_MAX_REDIRECTS + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        conn = _connection(url, check, remaining)
        try:
            parts = urlsplit(url)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, body=body or None, headers=_headers(check))
            resp = conn.getresponse()
            location = resp.getheader("Location")
            if resp.status in _REDIRECTS and location and not check.disable_redirects:
                url = urljoin(url, location)
                if resp.status in (301, 302, 303) and method != "HEAD":
                    method, body = "GET", b""
                continue
            text = _read_capped(resp, deadline).decode("utf-8", errors="replace")
            return (resp.status, resp.reason), text
        finally:
            conn.close()
    raise RuntimeError("stopped after 10 redirects")


def _read_capped(resp: http.client.HTTPResponse, deadline: float) -> bytes:
    """At most OUTPUT_MAX bytes of body, within the check's deadline even when
    the server drips bytes slowly (each read is bounded by the socket timeout)."""
    chunks, size = [], 0
    while size < OUTPUT_MAX:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = resp.read1(OUTPUT_MAX - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _connection(url: str, check: CheckDefinition, timeout: float):
    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if check.tls_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return _HTTPSConnection(
            parts.hostname,
            parts.port,
            timeout=timeout,
            context=context,
            server_name=check.tls_server_name or parts.hostname,
        )
    if parts.scheme != "http":
        raise ValueError(f'unsupported protocol scheme "{parts.scheme}"')
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS with TLSServerName: SNI and certificate name other than the host."""

    def __init__(self, host, port, *, timeout, context, server_name):
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls_context = context
        self._server_name = server_name

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(
            raw, server_hostname=self._server_name
        )


def _headers(check: CheckDefinition) -> dict[str, str]:
    # Consul's defaults, overridable; no keep-alive between runs.
    headers = {
        "User-Agent": "Consul Health Check",
        "Accept": "text/plain, text/*, */*",
        "Connection": "close",
    }
    for name, values in check.header.items():
        # http.client sends one value per name; Go would repeat the header.
        headers[name] = ", ".join(values)
    return headers


def _go_error(url: str, exc: Exception) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _dial_error(f"{parts.hostname}:{port}", exc, after_connect=True)


def _dial_error(address: str, exc: Exception, after_connect: bool = False) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {address}: connect: connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        if after_connect:
            return (
                "context deadline exceeded "
                "(Client.Timeout exceeded while awaiting headers)"
            )
        return f"dial tcp {address}: i/o timeout"
    if isinstance(exc, socket.gaierror):
        host = address.rsplit(":", 1)[0]
        return f"dial tcp: lookup {host}: no such host"
    if isinstance(exc, OSError) and exc.strerror:
        return f"dial tcp {address}: connect: {exc.strerror.lower()}"
    return str(exc) or type(exc).__name__


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def tcp_probe(address: str, timeout: float) -> tuple[str, str]:
    try:
        host, port = split_host_port(address)
        socket.create_connection((host, port), timeout=timeout).close()
    except ValueError:
        return "critical", f"address {address}: missing port in address"
    except OSError as exc:
        return "critical", _dial_error(address, exc)
    return "passing", f"TCP connect {address}: Success"

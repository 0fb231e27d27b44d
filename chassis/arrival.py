"""Whether the bytes of a request received so far are all gunicorn needs to answer it.

The services' worker (chassis.worker) waits for a request on gunicorn's poller, off the thread
pool, and hands it to a thread only once `arrived` says nothing more needs to come from the
client: its head and whole body are here, or gunicorn will answer at once without reading more
(a head past its limits, framing it refuses, a body longer than the app accepts, which gets its
413 unread). Only the framing is read here -- the Content-Length, a chunked body's chunk sizes,
Expect -- and only as far as deciding that; gunicorn's parser still judges the request.
"""

import re
from dataclasses import dataclass

__all__ = ["RECEIVE_SECONDS", "Arrival", "arrived"]

# A request's head and body must be in within this long of its first byte, as at the gateway
# (GATEWAY_HEADER_TIMEOUT): its callers are other processes, not people on slow links.
RECEIVE_SECONDS = 10.0

HEAD_END = b"\r\n\r\n"
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")


@dataclass(frozen=True)
class Arrival:
    """`complete`: gunicorn can take the request now -- all of it is here (`whole`), or
    gunicorn or the app answers without the rest. `expects_continue`: the head is here, the
    body is not, and the client waits for `100 Continue` before it sends it."""

    complete: bool
    whole: bool = False
    expects_continue: bool = False


WAIT = Arrival(False)
WHOLE = Arrival(True, whole=True)
# Answered without the rest: a limit, or framing gunicorn refuses.
REFUSED = Arrival(True)


def arrived(data: bytes, max_head: int, max_body: int) -> Arrival:
    """How far the request at the start of `data` has arrived; whatever follows it (a
    pipelined request) is ignored. A head longer than `max_head` is gunicorn's to refuse; a
    body longer than `max_body` the app's."""
    end = data.find(HEAD_END)
    if end < 0:
        return REFUSED if len(data) > max_head else WAIT
    framing = _framing(data[:end])
    if framing is None:
        return REFUSED  # malformed: gunicorn's 400
    lengths, codings, expects_continue = framing
    body = data[end + len(HEAD_END) :]
    if codings:
        if lengths or codings[-1] != b"chunked":
            return REFUSED  # gunicorn's 400 or 501
        arrival = _chunked(body, max_body)
    elif not lengths:
        return WHOLE  # no body
    elif len(set(lengths)) > 1 or not lengths[0].isdigit():
        return REFUSED  # gunicorn's 400
    elif int(lengths[0]) > max_body:
        return REFUSED  # the app's 413
    else:
        arrival = WHOLE if len(body) >= int(lengths[0]) else WAIT
    if expects_continue and not arrival.complete:
        return Arrival(False, expects_continue=True)
    return arrival


def _framing(head: bytes) -> tuple[list[bytes], list[bytes], bool] | None:
    """(Content-Length values, transfer codings, Expect: 100-continue) of a head; None if
    a header line has no colon."""
    lengths: list[bytes] = []
    codings: list[bytes] = []
    expects_continue = False
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            codings.extend(c.strip() for c in value.split(b","))
        elif name == b"expect":
            expects_continue = value == b"100-continue"
    return lengths, codings, expects_continue


def _chunked(body: bytes, max_body: int) -> Arrival:
    """How far a chunked body has arrived: up to its last chunk and trailers, or past
    `max_body` (the app's 413), or to a chunk size gunicorn refuses."""
    at, total = 0, 0
    while (line_end := body.find(b"\r\n", at)) >= 0:
        digits = body[at:line_end].split(b";", 1)[0].strip()
        if not CHUNK_SIZE.fullmatch(digits):
            return REFUSED  # gunicorn's 400
        size = int(digits, 16)
        if size == 0:  # the last chunk; then the trailers, up to an empty line
            return WHOLE if body.find(HEAD_END, line_end) >= 0 else WAIT
        total += size
        if total > max_body:
            return REFUSED
        at = line_end + 2 + size + 2
    # Chunk-size lines are short: a long one is gunicorn's to refuse.
    return REFUSED if len(body) - at > max_body else WAIT

import pytest

from chassis.arrival import REFUSED, WAIT, WHOLE, Arrival, arrived

MAX_HEAD, MAX_BODY = 100, 50
GET = b"GET /users HTTP/1.1\r\nHost: u\r\n"


def post(*headers: bytes) -> bytes:
    return b"POST /users HTTP/1.1\r\nHost: u\r\n" + b"".join(
        h + b"\r\n" for h in headers
    )


def chunks(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


CHUNKED = post(b"Transfer-Encoding: chunked") + b"\r\n"


@pytest.mark.parametrize(
    "data, arrival",
    [
        # the head
        (b"", WAIT),
        (GET, WAIT),
        (GET + b"\r\n", WHOLE),
        (
            GET + b"\r\nGET /next",
            WHOLE,
        ),  # a pipelined request after it is not waited for
        (b"G" * (MAX_HEAD + 1), REFUSED),  # past gunicorn's limits: its 414 or 431
        (GET + b"Bad line\r\n\r\n", REFUSED),  # gunicorn's 400
        # a body of known length
        (post(b"Content-Length: 5") + b"\r\nabcd", WAIT),
        (post(b"content-length: 5") + b"\r\nabcde", WHOLE),
        (post(b"Content-Length: 5") + b"\r\nabcdeGET", WHOLE),
        (post(b"Content-Length: 0") + b"\r\n", WHOLE),
        (post(b"Content-Length: 51") + b"\r\n", REFUSED),  # the app's 413
        (post(b"Content-Length: 5", b"Content-Length: 6") + b"\r\n", REFUSED),
        (post(b"Content-Length: -5") + b"\r\n", REFUSED),
        # a chunked body
        (CHUNKED, WAIT),
        (CHUNKED + chunks(b"ab"), WAIT),
        (CHUNKED + chunks(b"ab", b"c\r\nd") + b"0\r\n", WAIT),
        (CHUNKED + chunks(b"ab", b"c\r\nd") + b"0\r\n\r\n", WHOLE),
        (CHUNKED + b"2;ext=1\r\nab\r\n0\r\nX-Trailer: t\r\n", WAIT),
        (CHUNKED + b"2;ext=1\r\nab\r\n0\r\nX-Trailer: t\r\n\r\n", WHOLE),
        (CHUNKED + chunks(b"a" * 30, b"b" * 21), REFUSED),  # the app's 413
        (CHUNKED + b"zz\r\n", REFUSED),  # gunicorn's 400
        (CHUNKED + b"1" * (MAX_BODY + 1), REFUSED),  # no chunk-size line is that long
        # framing gunicorn refuses
        (post(b"Transfer-Encoding: chunked", b"Content-Length: 5") + b"\r\n", REFUSED),
        (post(b"Transfer-Encoding: gzip") + b"\r\n", REFUSED),
        (post(b"Transfer-Encoding: gzip, chunked") + b"\r\n", WAIT),
    ],
)
def test_how_far_a_request_has_arrived(data, arrival):
    assert arrived(data, MAX_HEAD, MAX_BODY) == arrival


EXPECTS = Arrival(False, expects_continue=True)
EXPECT = b"Expect: 100-continue"


@pytest.mark.parametrize(
    "data, arrival",
    [
        (post(EXPECT, b"Content-Length: 5") + b"\r\n", EXPECTS),
        (post(b"Expect: 100-Continue", b"Content-Length: 5") + b"\r\nab", EXPECTS),
        (post(EXPECT, b"Content-Length: 5") + b"\r\nabcde", WHOLE),
        (post(EXPECT, b"Content-Length: 51") + b"\r\n", REFUSED),
        (post(EXPECT, b"Transfer-Encoding: chunked") + b"\r\n", EXPECTS),
        (post(b"Content-Length: 5") + b"\r\n", WAIT),
    ],
)
def test_a_client_waiting_for_100_continue_is_told_apart(data, arrival):
    assert arrived(data, MAX_HEAD, MAX_BODY) == arrival

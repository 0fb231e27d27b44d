"""bench.load: reading wrk's report."""

import http.server
import math
import threading

import pytest

from bench import load
from bench.load import Load, parse_wrk

CLEAN = """\
Running 5s test @ http://127.0.0.1:1234/api/bench/item
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.40ms    2.10ms  30.00ms   80.00%
    Req/Sec   850.00     40.00     0.95k    70.00%
  Latency Distribution
     50%    9.12ms
     75%   10.50ms
     90%   12.00ms
     99%   18.00ms
  8512 requests in 5.00s, 2.10MB read
Requests/sec:   1702.40
Transfer/sec:    430.00KB
"""

ERRORS = """\
Running 5s test @ http://127.0.0.1:1234/api/bench/item
  2 threads and 256 connections
  Latency Distribution
     50%  812.00us
     99%    1.90s
  4100 requests in 5.01s, 1.00MB read
  Socket errors: connect 0, read 3, write 1, timeout 40
  Non-2xx or 3xx responses: 6
Requests/sec:    818.36
"""

NOTHING = """\
Running 1s test @ http://127.0.0.1:1234/
  1 threads and 1 connections
  Latency Distribution
     50%    0.00us
  0 requests in 1.00s, 0.00B read
  Socket errors: connect 0, read 0, write 0, timeout 1
"""


@pytest.mark.parametrize(
    "out, expected",
    [
        (CLEAN, Load(8512, 9.12, 0, 0)),
        (ERRORS, Load(4100, 0.812, 50, 40)),
    ],
)
def test_parse_wrk(out, expected):
    parsed = parse_wrk(out)
    assert parsed.requests == expected.requests
    assert parsed.errors == expected.errors
    assert parsed.timeouts == expected.timeouts
    assert parsed.p50_ms == pytest.approx(expected.p50_ms)


def test_parse_wrk_with_nothing_answered_has_no_p50():
    parsed = parse_wrk(NOTHING)
    assert (parsed.requests, parsed.errors, parsed.timeouts) == (0, 1, 1)
    assert math.isnan(parsed.p50_ms)


def test_the_python_generator_counts_a_request_past_its_timeout(monkeypatch):
    """A server that never answers in time: the one request is an error and a timeout."""
    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            release.wait(5)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(load, "REQUEST_TIMEOUT", 0.2)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        parsed = load.python_load(url, connections=1, seconds=0.1)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert (parsed.requests, parsed.errors, parsed.timeouts) == (0, 1, 1)

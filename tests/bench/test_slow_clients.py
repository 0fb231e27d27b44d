"""bench.slow_clients: its arithmetic, its HTTP reading, and the scenario against small
loopback servers -- one that serves everyone, one that never answers."""

import asyncio
import math
import resource

import pytest

from bench import slow_clients
from bench.slow_clients import clients_within, nofile_target, percentile, read_response

INF = resource.RLIM_INFINITY


@pytest.mark.parametrize(
    "values, q, expected",
    [
        ([], 50, math.nan),
        ([7.0], 99, 7.0),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.0),  # nearest rank: an observed value
        ([float(v) for v in range(1, 101)], 99, 99.0),
        ([float(v) for v in range(1, 101)], 100, 100.0),
        ([1.0, 2.0, math.inf], 50, 2.0),
        (
            [1.0, math.inf],
            99,
            math.inf,
        ),  # one unanswered probe in two: p99 is unanswered
    ],
)
def test_percentile(values, q, expected):
    got = percentile(values, q)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize(
    "needed, soft, hard, expected",
    [
        (1256, 1024, 4096, 1256),  # raised to what is needed
        (1256, 1024, INF, 1256),
        (1256, 20000, 20000, 20000),  # already enough: never lowered
        (1256, INF, INF, INF),
        (1256, 1024, 1100, 1100),  # capped by the hard limit
        (1256, 1024, 1000, 1024),  # a hard limit below the soft one changes nothing
    ],
)
def test_nofile_target(needed, soft, hard, expected):
    assert nofile_target(needed, soft, hard) == expected


@pytest.mark.parametrize(
    "limit, wanted, expected",
    [(INF, 1000, 1000), (20000, 1000, 1000), (1100, 1000, 1100 - slow_clients.FD_SPARE),
     (100, 1000, 0)],
)  # fmt: skip
def test_clients_within(limit, wanted, expected):
    assert clients_within(limit, wanted) == expected


def read(data: bytes) -> tuple[int, bytes]:
    """The status read_response finds in `data`, and what it leaves unread."""

    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        status = await read_response(reader)
        return status, await reader.read()

    return asyncio.run(go())


@pytest.mark.parametrize(
    "data, status",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200),
        ((b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"2\r\nhi\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"), 200),
        (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\nbye", 408),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204),
    ],
)  # fmt: skip
def test_read_response_reads_exactly_one_response(data, status):
    assert read(data + b"NEXT") == (status, b"" if status == 408 else b"NEXT")


def serving(header_deadline: float | None = None):
    """A handler answering every complete request head. With `header_deadline`, a head not
    complete that long after its first byte gets a 408 and the connection is closed (what
    the gateway is to do, issue 11); without, a trickled head simply never completes."""

    async def handle(reader, writer):
        try:
            while True:
                await reader.readexactly(1)  # idle on keep-alive until a request starts
                try:
                    async with asyncio.timeout(header_deadline):
                        head = await reader.readuntil(b"\r\n\r\n")
                except TimeoutError:
                    writer.write(
                        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"
                    )
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def never_answer(reader, writer):
    await reader.read()  # holds the connection until the client goes
    writer.close()


def scenario_against(handler, **kwargs):
    async def go():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await slow_clients.scenario(
                "127.0.0.1", port, "/api/bench/item", **kwargs
            )

    return asyncio.run(go())


@pytest.fixture
def short(monkeypatch):
    """A short ramp, so a scenario takes a second or two, not half a minute; the waits
    stay generous (they end as soon as their condition holds) for a loaded machine."""
    monkeypatch.setattr(slow_clients, "RAMP_SECONDS", 0.2)
    monkeypatch.setattr(slow_clients, "REOPEN_AFTER", 0.1)
    monkeypatch.setattr(slow_clients, "SETUP_TIMEOUT", 10.0)
    monkeypatch.setattr(slow_clients, "PROBE_TIMEOUT", 10.0)


def test_a_server_that_serves_everyone_answers_every_probe(short):
    outcome = scenario_against(serving(), clients=6, tricklers=2, rate=10, seconds=0.5)
    assert len(outcome.probes) == 5
    assert len(outcome.answered) == 5
    assert outcome.open_when_probing == 6
    assert outcome.tally.answers[200] == 4  # each idle client's one GET
    assert outcome.tally.refused == 0


def test_tricklers_cut_off_by_a_deadline_come_back(short):
    outcome = scenario_against(
        serving(header_deadline=0.3), clients=4, tricklers=2, rate=10, seconds=1.0
    )
    assert len(outcome.answered) == 10
    assert outcome.tally.answers[408] >= 2  # each trickler, at least once
    assert outcome.tally.opened > 4  # closed, then opened again


def test_a_server_that_never_answers_still_ends_and_says_so(short, monkeypatch):
    monkeypatch.setattr(slow_clients, "SETUP_TIMEOUT", 0.5)  # every wait runs out here
    monkeypatch.setattr(slow_clients, "PROBE_TIMEOUT", 0.3)
    outcome = scenario_against(
        never_answer, clients=4, tricklers=2, rate=10, seconds=0.3
    )
    assert outcome.probes == ["timeout"] * 3
    assert outcome.answered == []
    assert math.isinf(outcome.latency(99))

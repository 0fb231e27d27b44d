"""Slow and idle clients: do they cost the gateway's other clients anything?

`clients` connections stay open to the gateway for the whole window: a share of them trickle
a request head (one `X-A: b` line every 2 s, never the blank line), the rest send one GET and
then sit idle on keep-alive. A connection the gateway closes (a header deadline, an idle
timeout, a connection cap) is opened again after a pause, so the pressure stays what it was.
Meanwhile a prober sends ordinary GETs, a fresh connection each as curl would, at a fixed
rate for a fixed time; each probe has `PROBE_TIMEOUT` to be answered. Reported: probes
answered, their p50 and p99 (an unanswered probe counts as slower than any answer), and
what the gateway did with the slow clients.

Everything is bounded: the ramp-up, the wait for the connections, the probing window and
each probe; at the end (or on Ctrl-C) every task is cancelled and every socket closed.
"""

import asyncio
import math
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

TRICKLE_EVERY = 2.0  # seconds between two header lines of a trickling client
REOPEN_AFTER = 1.0  # seconds before a closed or refused slow client connects again
CONNECT_TIMEOUT = 5.0
RAMP_SECONDS = 2.0  # each group of slow clients connects spread over this long
SETUP_TIMEOUT = 15.0  # seconds to wait for every slow client to be in place
PROBE_TIMEOUT = 5.0
FD_SPARE = 256  # descriptors besides the slow clients: probes in flight, logs, pipes


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (an observed value, never an interpolation); nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def nofile_target(needed: int, soft: int, hard: int) -> int:
    """The soft RLIMIT_NOFILE to ask for: `needed`, within the hard limit; never lower."""
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard == resource.RLIM_INFINITY:
        return needed
    return max(soft, min(needed, hard))


def raise_nofile(needed: int) -> int:
    """Raise this process's soft descriptor limit (children inherit it); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = nofile_target(needed, soft, hard)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        print(f"slow clients: RLIMIT_NOFILE soft limit raised from {soft} to {target}")
    if target != resource.RLIM_INFINITY and target < needed:
        print(
            f"slow clients: cannot raise RLIMIT_NOFILE to {needed} (hard limit {hard});"
            f" running with fewer clients"
        )
    return target


def clients_within(limit: int, wanted: int) -> int:
    if limit == resource.RLIM_INFINITY:
        return wanted
    return max(0, min(wanted, limit - FD_SPARE))


# -- HTTP over asyncio streams ---------------------------------------------------------------


def request_head(path: str, close: bool = False) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{connection}\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one whole response (Content-Length, chunked, or to EOF); its status."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    fields = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
    }
    if "content-length" in fields:
        await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # trailers
    elif status >= 200 and status not in (204, 304):
        await reader.read()
    return status


# -- the slow clients --------------------------------------------------------------------------


@dataclass
class Tally:
    """What happened to the slow clients, counted as it happens."""

    open: int = 0  # connections open right now
    opened: int = 0
    refused: int = 0  # connects that failed or timed out
    closed_by_server: int = 0
    answers: Counter = field(default_factory=Counter)  # status -> count


async def connect(host: str, port: int, tally: Tally):
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            streams = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        tally.refused += 1
        return None
    tally.opened += 1
    tally.open += 1
    return streams


async def slow_client(session, host: str, port: int, path: str, tally: Tally) -> None:
    """One connection held through `session`; when the server ends it, another."""
    while True:
        if streams := await connect(host, port, tally):
            reader, writer = streams
            try:
                await session(reader, writer, path, tally)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                pass  # reset, cut short or garbled: ended by the server all the same
            finally:
                tally.open -= 1
                writer.close()
            tally.closed_by_server += 1
        await asyncio.sleep(REOPEN_AFTER)


async def stay_idle(reader, writer, path: str, tally: Tally) -> None:
    """One GET, then idle on keep-alive until the server closes the connection."""
    writer.write(request_head(path))
    tally.answers[await read_response(reader)] += 1
    await reader.read(1)  # b"" once the server closes; waits while idle


async def trickle(reader, writer, path: str, tally: Tally) -> None:
    """A request head sent one line every TRICKLE_EVERY seconds, never finished."""
    writer.write(request_head(path)[: -len(b"\r\n")])
    while True:
        try:
            async with asyncio.timeout(TRICKLE_EVERY):
                answer = await reader.read(64)
        except TimeoutError:
            writer.write(b"X-A: b\r\n")
            await writer.drain()
            continue
        if answer.startswith(b"HTTP/"):
            tally.answers[int(answer.split()[1])] += 1
        return  # answered (a 408, say) or closed: the server is done with it


def spread(count: int, client, *args) -> list[asyncio.Task]:
    """`count` tasks of `client`, their starts spread over RAMP_SECONDS."""

    async def later(delay):
        await asyncio.sleep(delay)
        await client(*args)

    return [asyncio.create_task(later(i * RAMP_SECONDS / count)) for i in range(count)]


async def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


# -- the prober ----------------------------------------------------------------------------


async def probe(host: str, port: int, path: str) -> float | str:
    """Milliseconds to a whole 200 answer on a fresh connection, or why there was none."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request_head(path, close=True))
                status = await read_response(reader)
            finally:
                writer.close()
    except TimeoutError:
        return "timeout"
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return type(exc).__name__
    if status != 200:
        return f"status {status}"
    return (time.perf_counter() - started) * 1000


async def probes(host: str, port: int, path: str, rate: float, seconds: float):
    """Probes at `rate` per second for `seconds`, each on its own schedule."""
    started = time.monotonic()
    tasks = []
    for i in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(probe(host, port, path)))
    return await asyncio.gather(*tasks)


# -- the scenario --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    clients: int
    tricklers: int
    open_when_probing: int
    probes: list  # per probe: milliseconds, or the reason it was not answered
    tally: Tally
    rate: float
    seconds: float

    @property
    def answered(self) -> list[float]:
        return [p for p in self.probes if isinstance(p, float)]

    def latency(self, q: float) -> float:
        """A percentile over every probe, an unanswered one counting as infinitely slow."""
        return percentile(
            [p if isinstance(p, float) else math.inf for p in self.probes], q
        )


async def scenario(
    host: str, port: int, path: str, clients: int, tricklers: int, rate: float,
    seconds: float,
) -> Outcome:  # fmt: skip
    tally = Tally()
    tasks = []
    try:
        # The idle clients first: each needs its one GET answered before the tricklers
        # arrive, or a server that the tricklers starve would leave them unanswered.
        idle = clients - tricklers
        tasks += spread(idle, slow_client, stay_idle, host, port, path, tally)
        await wait_until(lambda: tally.answers.total() >= idle, SETUP_TIMEOUT)
        tasks += spread(tricklers, slow_client, trickle, host, port, path, tally)
        await wait_until(lambda: tally.open >= clients, SETUP_TIMEOUT)
        open_when_probing = tally.open
        answers = await probes(host, port, path, rate, seconds)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CONNECT_TIMEOUT)  # their sockets close
    return Outcome(clients, tricklers, open_when_probing, answers, tally, rate, seconds)


def run(host: str, port: int, path: str, **kwargs) -> Outcome:
    return asyncio.run(scenario(host, port, path, **kwargs))


def ms(value: float) -> str:
    if math.isinf(value):
        return f"unanswered (> {PROBE_TIMEOUT * 1000:.0f} ms)"
    return "n/a" if math.isnan(value) else f"{value:.1f} ms"


def report(outcome: Outcome, server: str) -> None:
    t = outcome.tally
    idle = outcome.clients - outcome.tricklers
    print(
        f"\n[slow clients, {server}] {outcome.clients} connections: "
        f"{outcome.tricklers} trickling a header line every {TRICKLE_EVERY:g} s, "
        f"{idle} idle on keep-alive after one GET; {outcome.open_when_probing} open when "
        f"probing began"
    )
    print(
        f"  slow clients over the whole run: {t.opened} connections opened, "
        f"{t.refused} connects failed, {t.closed_by_server} closed by the server "
        f"(then reopened), answers by status {dict(sorted(t.answers.items()))}"
    )
    failures = Counter(p for p in outcome.probes if not isinstance(p, float))
    print(
        f"  probes ({outcome.rate:g}/s for {outcome.seconds:g} s, fresh connection each, "
        f"{PROBE_TIMEOUT:g} s timeout): answered {len(outcome.answered)} of "
        f"{len(outcome.probes)} (target: all)"
        + (f", unanswered: {dict(failures)}" if failures else "")
    )
    print(
        f"  probe p50 {ms(outcome.latency(50))}, p99 {ms(outcome.latency(99))} "
        f"(target: p99 < 100 ms)"
    )

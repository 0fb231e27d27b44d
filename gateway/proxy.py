"""Forwarding one request to a service: choose, attempt, retry what is safe, map failures.

Rules (issue 5):
- a connect failure (nothing was sent) is retried on a different instance for any method;
- a 502/503 answer, a read timeout or a connection dropped mid-exchange is retried only for
  GET, HEAD, OPTIONS, PUT, DELETE or a request carrying `Idempotency-Key`;
- at most `max_attempts`, never the same instance twice, all within one deadline, and each
  retry must fit the service's retry budget;
- a body too large to hold (it streams) is sent again only after a connect failure: none
  of it was read yet;
- a failure (connect error, timeout, dropped connection, 5xx) counts towards ejection.
Final answers: the upstream's own response when there is one (its 503 with a Retry-After,
its own or GATEWAY_RETRY_AFTER); otherwise 504 if time ran out or an attempt timed out, 502 if
attempts failed, 503 + Retry-After when no instance was left.
"""

import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import NamedTuple

from chassis.spans import attempt_span
from discovery.instances import Instance
from gateway.directory import ServiceState, routable
from gateway.resilience import Ejector, RetryBudget
from gateway.settings import GatewaySettings
from gateway.upstream import (
    ConnectFailed,
    RequestBody,
    Upstream,
    UpstreamBroken,
    UpstreamResponse,
    UpstreamTimeout,
)

__all__ = ["Attempt", "Forwarder", "Outcome", "Result", "retryable"]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Bodies up to this size are held (both ways); larger ones stream.
PRELOAD_LIMIT = 1 << 20


class Outcome:
    OK = "ok"
    CONNECT_FAILED = "connect_failed"
    TIMEOUT = "timeout"
    RESET = "reset"
    UNAVAILABLE = "unavailable"  # the upstream answered 502 or 503
    SERVER_ERROR = "server_error"  # any other 5xx: returned as is, counts for ejection


def retryable(outcome: str, method: str, idempotency_key: bool) -> bool:
    if outcome == Outcome.CONNECT_FAILED:
        return True
    if outcome in (Outcome.TIMEOUT, Outcome.RESET, Outcome.UNAVAILABLE):
        return method in IDEMPOTENT or idempotency_key
    return False


def classify_status(status: int) -> str:
    if status in (502, 503):
        return Outcome.UNAVAILABLE
    return Outcome.SERVER_ERROR if status >= 500 else Outcome.OK


class Attempt(NamedTuple):  # a tuple: made on every request, cheaper than a dataclass
    instance: str
    outcome: str
    status: int | None = None

    def describe(self) -> str:
        return f"{self.instance}={self.status or self.outcome}"


@dataclass
class Result:
    """What to answer: an upstream response, or a gateway error (`error_code` set)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None  # a large upstream body, as it arrives
    length: int | None = None  # of the stream, when the upstream said
    instance: str = "-"
    error_code: str | None = None
    message: str = ""
    attempts: list[Attempt] = field(default_factory=list)


class Forwarder:
    def __init__(self, settings: GatewaySettings, ejector: Ejector, metrics=None):
        self.settings = settings
        self.ejector = ejector
        self.metrics = metrics
        self.upstream = Upstream(settings.pool_size)
        self._budgets: dict[str, RetryBudget] = {}
        # Whether each attempt is a span of its own (Gateway.trace_requests).
        self.tracing = False

    def budget(self, service: str) -> RetryBudget:
        budget = self._budgets.get(service)
        if budget is None:
            s = self.settings
            budget = self._budgets.setdefault(
                service,
                RetryBudget(
                    s.retry_budget_ratio, s.retry_budget_min, s.retry_budget_window
                ),
            )
        return budget

    async def forward(
        self,
        state: ServiceState,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | RequestBody,
        idempotency_key: bool = False,
    ) -> Result:
        """`body` in memory may be sent again; a streamed one (too large to hold) only
        while none of it was read -- after a connect failure."""
        s = self.settings
        deadline = time.monotonic() + s.deadline
        budget = self.budget(state.name)
        budget.request()
        held = isinstance(body, bytes)
        replayable = (method in IDEMPOTENT or idempotency_key) and held
        attempts: list[Attempt] = []
        last: Result | None = None  # the latest 502/503 an upstream answered
        while len(attempts) < s.max_attempts:
            candidates = routable(state, self.ejector)
            if attempts:
                tried = {a.instance for a in attempts}
                candidates = [i for i in candidates if i.id not in tried]
            remaining = deadline - time.monotonic()
            if not candidates or remaining <= 0:
                break
            if attempts and not budget.try_retry():
                self._count("budget_exhausted", state.name)
                break
            if attempts:
                self._count("retries", state.name)
            strategy = state.strategy
            instance = strategy.choose(candidates)
            strategy.begin(instance)
            try:
                result = await self._attempt(
                    instance,
                    len(attempts) + 1,
                    method,
                    target,
                    headers,
                    body,
                    remaining,
                    replayable,
                )
            finally:
                strategy.end(instance)
            attempt = result.attempts[0]
            attempts.append(attempt)
            self._judge(state, instance, attempt.outcome)
            if result.error_code is None:
                last = result
            if not retryable(attempt.outcome, method, idempotency_key) or (
                not held and attempt.outcome != Outcome.CONNECT_FAILED
            ):
                if result.error_code is not None:
                    result = self._failure(state, attempts, deadline)
                return _with_attempts(result, attempts)
        return _with_attempts(
            last or self._failure(state, attempts, deadline), attempts
        )

    def _attempt(
        self, instance, number, method, target, headers, *rest
    ) -> Awaitable[Result]:
        """One attempt on one instance: the one place where an upstream exchange starts
        and ends (instance, outcome, status). Untraced, it is the exchange itself (no
        coroutine of its own to start and resume)."""
        if not self.tracing:
            return self._exchange(instance, method, target, headers, *rest)
        return self._traced_exchange(instance, number, method, target, headers, *rest)

    async def _traced_exchange(
        self, instance, number, method, target, headers, *rest
    ) -> Result:
        """A CLIENT span, a child of the request's, whose traceparent the upstream gets:
        its server span is the attempt's child. A retry is the next sibling."""
        with attempt_span(instance, number, method, target) as span:
            result = await self._exchange(
                instance, method, target, [*headers, *span.headers], *rest
            )
            attempt = result.attempts[0]
            span.finish(attempt.outcome, attempt.status)
            return result

    async def _exchange(
        self, instance, method, target, headers, body, remaining, replayable
    ) -> Result:
        s = self.settings
        try:
            response = await self.upstream.send(
                instance.address,
                instance.port,
                method,
                target,
                headers,
                body,
                min(s.connect_timeout, remaining),
                min(s.read_timeout, remaining),
                replayable,
            )
            outcome = classify_status(response.status)
            if response.status == 503:
                self.with_retry_after(response.headers)
            length = response.length
            # A 502/503 is read whole: it may be answered after a retry fails.
            if outcome == Outcome.UNAVAILABLE or (
                length is not None and length <= PRELOAD_LIMIT
            ):
                return _upstream_result(
                    instance, response, outcome, await response.read()
                )
            return _upstream_result(
                instance, response, outcome, stream=response.stream()
            )
        except ConnectFailed:
            return _failed(instance, Outcome.CONNECT_FAILED)
        except UpstreamTimeout:
            return _failed(instance, Outcome.TIMEOUT)
        except (UpstreamBroken, OSError):
            return _failed(instance, Outcome.RESET)

    def _judge(self, state: ServiceState, instance: Instance, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.attempt(state.name, outcome)
        if outcome == Outcome.OK:
            self.ejector.success(instance.id)
            return
        # Only instances Consul lets us route to can stand in for an ejected one.
        peers = [i.id for i in state.admitted]
        ejected = self.ejector.failure(instance.id, peers, outcome)
        if ejected and self.metrics is not None:
            m = self.metrics
            m.child(m.ejections, state.name, instance.id).inc()

    def _failure(self, state, attempts: list[Attempt], deadline: float) -> Result:
        outcomes = {a.outcome for a in attempts}
        if Outcome.TIMEOUT in outcomes or (attempts and time.monotonic() >= deadline):
            return Result(
                504,
                error_code="upstream_timeout",
                message=f"{state.name} did not answer in time",
            )
        if attempts:
            return Result(
                502,
                error_code="bad_gateway",
                message=f"every attempt to reach {state.name} failed",
            )
        return Result(
            503,
            headers=self.with_retry_after([]),
            error_code="no_healthy_instance",
            message=f"no healthy instance of {state.name}",
        )

    def with_retry_after(self, headers: list) -> list:
        """Every 503 the gateway answers says when to try again: the service's own
        Retry-After when it gave one, else GATEWAY_RETRY_AFTER."""
        if not any(name.lower() == "retry-after" for name, _ in headers):
            headers.append(("Retry-After", str(self.settings.retry_after)))
        return headers

    def _count(self, metric: str, service: str) -> None:
        if self.metrics is not None:
            self.metrics.child(getattr(self.metrics, metric), service).inc()


def _failed(instance: Instance, outcome: str) -> Result:
    return Result(
        0,
        instance=instance.id,
        error_code=outcome,
        attempts=[Attempt(instance.id, outcome)],
    )


def _with_attempts(result: Result, attempts: list[Attempt]) -> Result:
    result.attempts = attempts
    return result


def _upstream_result(
    instance: Instance,
    response: UpstreamResponse,
    outcome: str,
    body: bytes | None = None,
    stream: AsyncIterator[bytes] | None = None,
) -> Result:
    """The upstream's answer, its body held or streamed."""
    return Result(
        response.status,
        response.headers,
        body,
        stream,
        response.length if stream is not None else None,
        instance.id,
        attempts=[Attempt(instance.id, outcome, response.status)],
    )

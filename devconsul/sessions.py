"""Consul sessions: creating them as ``PUT /v1/session/create`` does, and
expiring the ones with a TTL.

Validation follows Consul's order and texts (agent/session_endpoint.go,
agent/consul/session_endpoint.go, agent/consul/state/session.go). Errors that
Consul raises inside its RPC layer reach clients as 500s with the bare message;
only a body that does not decode is a 400.

TTL rule: like Consul's leader (agent/consul/session_ttl.go), a session is
invalidated ``TTL * 2`` after it was created or last renewed -- never before the
TTL, at most twice it. The timer is in memory, as Consul's is.
"""

import logging
import threading
import time
import uuid

from devconsul import schemas
from devconsul.decode import Fields, decode_failed, enterprise_field, load_json
from devconsul.durations import HOUR, SECOND, format_duration, parse_duration, seconds
from devconsul.errors import HTTPError
from devconsul.scheduler import Scheduler
from devconsul.store import Session, Store

log = logging.getLogger("devconsul.sessions")

SERF_CHECK = "serfHealth"
BEHAVIORS = ("release", "delete")
TTL_MAX = 24 * HOUR
TTL_MULTIPLIER = 2
# A bare number under this many nanoseconds is taken as seconds: clients send
# "LockDelay": 5 meaning five seconds (structs.lockDelayMinThreshold).
LOCK_DELAY_SECONDS_BELOW = 1000


def _rpc_error(message: str) -> HTTPError:
    return HTTPError(500, message)


def _lock_delay(f: Fields) -> int:
    value = f.raw("LockDelay")
    if value is None:
        return 15 * SECOND
    delay = 0
    if isinstance(value, str):
        try:
            delay = parse_duration(value)
        except ValueError as exc:
            raise decode_failed(str(exc)) from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        delay = int(value)
    return delay * SECOND if delay < LOCK_DELAY_SECONDS_BELOW else delay


def _check_list(f: Fields, name: str, default: list | None) -> list | None:
    """Go's decoding into a pre-filled slice: absent keeps the default, null
    makes it nil (None), a list replaces it."""
    if not f.present(name):
        return default
    return f.str_list(name) if f.raw(name) is not None else None


def _service_checks(f: Fields) -> list[dict] | None:
    if f.raw("ServiceChecks") is None:
        return None
    items = f.raw("ServiceChecks")
    if not isinstance(items, list):
        raise decode_failed(
            "json: cannot unmarshal into Go struct field Session.ServiceChecks of "
            "type []structs.ServiceCheck"
        )
    checks = []
    for item in items:
        check = Fields(item, "ServiceCheck", schemas.SERVICE_CHECK)
        checks.append({"ID": check.str("ID"), "Namespace": check.str("Namespace")})
    return checks


def parse_create(body: bytes, node: str) -> Session:
    """The session a create request describes, with Consul's defaults: this
    agent's node, serfHealth, 15s lock-delay, release (SessionCreate)."""
    try:
        f = Fields(load_json(body) if body else None, "Session", schemas.SESSION)
    except HTTPError as exc:
        raise enterprise_field(exc) from None
    session = Session(
        id="",
        node=f.str("Node", node),
        name=f.str("Name"),
        lock_delay=_lock_delay(f),
        behavior=f.str("Behavior") or "release",
        ttl=f.str("TTL"),
        node_checks=_check_list(f, "NodeChecks", [SERF_CHECK]),
        service_checks=_service_checks(f),
        checks=_check_list(f, "Checks", [SERF_CHECK]),
    )
    _fixup_checks(session)
    return session


def _fixup_checks(session: Session) -> None:
    """fixupEmptySessionChecks: the deprecated Checks field, defaulted to
    [serfHealth] like NodeChecks, decides how the two lists combine."""
    if not session.checks:
        session.node_checks = []
    elif session.checks == [SERF_CHECK] or not session.node_checks:
        session.checks = None


def parse_ttl(ttl: str, minimum: int) -> int:
    """The TTL in nanoseconds (0: none), with Session.Apply's checks."""
    if not ttl:
        return 0
    try:
        value = parse_duration(ttl)
    except ValueError as exc:
        raise _rpc_error(f"Session TTL '{ttl}' invalid: {exc}") from None
    if value and not minimum <= value <= TTL_MAX:
        raise _rpc_error(
            f"Invalid Session TTL '{value}', must be between "
            f"[{format_duration(minimum)}={format_duration(TTL_MAX)}]"
        )
    return value


class Sessions:
    """Creates, destroys and renews sessions; owns the TTL timers."""

    def __init__(self, store: Store, scheduler: Scheduler, ttl_min: int):
        self.store = store
        self.scheduler = scheduler
        self.ttl_min = ttl_min
        self._deadlines: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self, session: Session) -> str:
        if not session.node:
            raise _rpc_error("Must provide Node")
        if session.behavior not in BEHAVIORS:
            raise _rpc_error(f"Invalid Behavior setting '{session.behavior}'")
        ttl = parse_ttl(session.ttl, self.ttl_min)
        session.id = str(uuid.uuid4())
        store = self.store
        with store.write():
            # Any case names the node (Consul's lowercased nodes index); the
            # session keeps the name as sent, as Consul's does.
            node = store.node_named(session.node)
            if node is None:
                raise _rpc_error("Missing node registration")
            for check_id in session.check_ids():
                check = store.check(node.name, check_id)
                if check is None:
                    raise _rpc_error(f"Missing check '{check_id}' registration")
                if check.status == "critical":
                    raise _rpc_error(f"Check '{check_id}' is in critical state")
            store.session_create(session)
        self._reset_timer(session.id, ttl)
        return session.id

    def destroy(self, session_id: str) -> None:
        with self._lock:
            self._deadlines.pop(session_id, None)
        self.store.session_destroy(session_id)

    def renew(self, session_id: str) -> Session | None:
        with self.store.lock:
            session = self.store.sessions.get(session_id)
        if session is not None:
            # Consul's renew writes nothing to the state store: no index moves.
            self._reset_timer(session_id, parse_ttl(session.ttl, 0))
        return session

    def _reset_timer(self, session_id: str, ttl: int) -> None:
        """One timer per session, as Consul's: a renewal only moves the deadline,
        and the timer, firing before it, waits again (see _expire)."""
        if not ttl:
            return
        deadline = time.monotonic() + seconds(ttl * TTL_MULTIPLIER)
        with self._lock:
            scheduled = session_id in self._deadlines
            self._deadlines[session_id] = deadline
        if not scheduled:
            self._schedule(session_id, deadline)

    def _schedule(self, session_id: str, deadline: float) -> None:
        self.scheduler.call_at(deadline, lambda: self._expire(session_id))

    def _expire(self, session_id: str) -> None:
        with self._lock:
            deadline = self._deadlines.get(session_id)
            if deadline is None:
                return  # destroyed meanwhile
            if time.monotonic() < deadline:  # renewed meanwhile
                self._schedule(session_id, deadline)
                return
            del self._deadlines[session_id]
        if self.store.session_destroy(session_id):
            log.info("session %s invalidated: TTL expired", session_id)

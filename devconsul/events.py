"""User events (``consul event``): fired, filtered and kept as a dev agent does.

Consul sends an event over gossip; each agent keeps it only if it passes the
event's node/service/tag filters (regular expressions, matched anywhere) and
remembers the last 256 in a ring (agent/user_event.go). The list's index is
not a raft index but derived from the newest event's ID (uuidToUint64 in
agent/event_endpoint.go), so blocking waits for the index to *differ*.
"""

import base64
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace

BUFFER = 256
# serf's UserEventSizeLimit; checked here on name plus payload.
SIZE_LIMIT = 512
VERSION = 1


class InvalidEvent(ValueError):
    """Refused before firing, with Consul's message."""


@dataclass
class UserEvent:
    id: str
    name: str
    payload: bytes | None = None
    node_filter: str = ""
    service_filter: str = ""
    tag_filter: str = ""
    ltime: int = 0

    def to_json(self) -> dict:
        """api.UserEvent: the payload as base64 ([]byte in Go's JSON)."""
        return {
            "ID": self.id,
            "Name": self.name,
            "Payload": base64.b64encode(self.payload).decode()
            if self.payload
            else None,
            "NodeFilter": self.node_filter,
            "ServiceFilter": self.service_filter,
            "TagFilter": self.tag_filter,
            "Version": VERSION,
            "LTime": self.ltime,
        }


def index_of(event_id: str) -> int:
    """uuidToUint64: the UUID's two 64-bit halves XORed together."""
    digits = event_id.replace("-", "")
    return int(digits[:16], 16) ^ int(digits[16:], 16)


def _compile(pattern: str, what: str) -> re.Pattern | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidEvent(
            f"Invalid {what} filter: error parsing regexp: {exc.msg}"
        ) from None


def validate(event: UserEvent) -> None:
    if event.tag_filter and not event.service_filter:
        raise InvalidEvent("Cannot provide tag filter without service filter")
    _compile(event.node_filter, "node")
    _compile(event.service_filter, "service")
    _compile(event.tag_filter, "tag")
    if len(event.name) + len(event.payload or b"") > SIZE_LIMIT:
        raise InvalidEvent(
            f"user event exceeds configured limit of {SIZE_LIMIT} bytes before encoding"
        )


def accepts(event: UserEvent, node: str, services: dict[str, list[str]]) -> bool:
    """shouldProcessUserEvent: does this agent (node, {service: tags}) keep it?"""
    node_re = _compile(event.node_filter, "node")
    if node_re and not node_re.search(node):
        return False
    service_re = _compile(event.service_filter, "service")
    if service_re is None:
        return True
    tag_re = _compile(event.tag_filter, "tag")
    return any(
        service_re.search(name) and (tag_re is None or any(map(tag_re.search, tags)))
        for name, tags in services.items()
    )


class UserEvents:
    """The agent's ring of recent events and a condition to block on."""

    def __init__(self):
        self._ring: deque[UserEvent] = deque(maxlen=BUFFER)
        self._ltime = 0
        self._changed = threading.Condition()

    def fire(self, event: UserEvent, node: str, services: dict) -> UserEvent:
        """Validate and send: returns the event as fired (LTime 0, as Consul
        answers before gossip stamps it); kept only if its filters accept us."""
        validate(event)
        event.id = str(uuid.uuid4())
        with self._changed:
            self._ltime += 1
            if accepts(event, node, services):
                self._ring.append(replace(event, ltime=self._ltime))
                self._changed.notify_all()
        return event

    def _index(self, name: str) -> int:
        matching = [e for e in self._ring if not name or e.name == name]
        return index_of(matching[-1].id) if matching else 1

    def list(self, name: str, index: int, timeout: float) -> tuple[list, int]:
        """Events named `name` (all when empty), oldest first, and the index;
        with `index`, first wait up to `timeout` until it differs."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while index and self._index(name) == index:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            found = [e for e in self._ring if not name or e.name == name]
            return found, self._index(name)

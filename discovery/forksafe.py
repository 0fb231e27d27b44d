"""Name resolution that a fork waits for, in a process that forks while its threads run.

The gunicorn master forks its workers while its own threads (anti-entropy, the watchers of
the services it calls) talk to Consul. A fork taken while one of them is inside glibc's
getaddrinfo can copy a resolver lock in its held state into the child, whose own first
getaddrinfo (its database host, at boot) then waits on that lock forever: a worker that
never serves and ignores SIGTERM, so the container is killed at its stop timeout.

`guard_name_resolution()` makes every socket.getaddrinfo of this process take one lock, and
every os.fork take it too: a fork waits for a lookup in flight, and no lookup starts during
one. The child, which serves rather than forks, goes back to the unguarded getaddrinfo.
"""

import os
import socket
import threading

_lock = threading.Lock()
_unguarded = socket.getaddrinfo
_fork_hooks_registered = False  # inherited by a child, where they stay registered


def _guarded_getaddrinfo(*args, **kwargs):
    with _lock:
        return _unguarded(*args, **kwargs)


def _after_fork_in_child() -> None:
    socket.getaddrinfo = _unguarded
    _lock.release()  # taken by the forking thread, which is this process's only one


def guard_name_resolution() -> None:
    """From now on, in this process, no fork happens while a thread resolves a name.
    Call it before starting threads that may resolve names; calling it again is harmless."""
    global _fork_hooks_registered
    if not _fork_hooks_registered:
        os.register_at_fork(
            before=_lock.acquire,
            after_in_parent=_lock.release,
            after_in_child=_after_fork_in_child,
        )
        _fork_hooks_registered = True
    socket.getaddrinfo = _guarded_getaddrinfo

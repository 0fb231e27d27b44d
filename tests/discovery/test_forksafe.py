"""discovery.forksafe: a fork waits for a name lookup in flight.

Each scenario runs in a fresh interpreter: the guard changes process-wide state (socket's
getaddrinfo, fork hooks that cannot be removed) that must not leak into the test process.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A lookup that takes 0.5 s (as a slow resolver would) and records whether one is in flight;
# a child forked meanwhile inherits that record as it stood at the fork.
SLOW_LOOKUP = """
    import os, socket, threading, time
    from discovery import forksafe

    inside = threading.Event()

    def slow_lookup(*args, **kwargs):
        inside.set()
        time.sleep(0.5)
        inside.clear()
        return []

    forksafe._unguarded = slow_lookup

    def fork_during_a_lookup():
        \"\"\"Forks while another thread is looking a name up; the child's report, and the
        child's own lookup takes no lock (so it cannot hang).\"\"\"
        thread = threading.Thread(target=socket.getaddrinfo, args=("consul", 8500))
        thread.start()
        inside.wait()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            at_fork = "in flight" if inside.is_set() else "none"
            unguarded = socket.getaddrinfo is slow_lookup
            os.write(write, f"{at_fork} {unguarded}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        thread.join()
        return os.read(read, 100).decode()
"""


def run(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SLOW_LOOKUP) + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_the_guard_a_fork_can_happen_in_the_middle_of_a_lookup():
    """What the guard is for: a child of a thread that resolves may inherit a lookup (and
    glibc's resolver locks) half done."""
    out = run(
        """
        socket.getaddrinfo = slow_lookup
        print(fork_during_a_lookup())
        """
    )
    assert out == "in flight True"


def test_a_fork_waits_for_the_lookup_in_flight_and_the_child_resolves_unguarded():
    out = run(
        """
        forksafe.guard_name_resolution()
        print(fork_during_a_lookup())
        print(fork_during_a_lookup())  # the parent stays guarded after a fork
        """
    )
    assert out.splitlines() == ["none True", "none True"]


def test_guarding_again_registers_no_second_fork_hook():
    """A second `before` hook would wait for the lock the first one holds: a fork that
    never returns."""
    out = run(
        """
        forksafe.guard_name_resolution()
        forksafe.guard_name_resolution()
        print(fork_during_a_lookup())
        """
    )
    assert out == "none True"


def test_the_master_guards_before_it_starts_its_threads():
    out = run(
        """
        from discovery.gunicorn_hooks import service_hooks

        class Arbiter:
            def handle_term(self):
                pass

        env = {"SERVICE_ADDRESS": "127.0.0.1", "CONSUL_HTTP_ADDR": "127.0.0.1:1"}
        hooks = service_hooks("forksafe-test", "/f", 8001, env, depends_on=("other",))
        hooks["when_ready"](Arbiter())  # Consul unreachable: it warns and goes on
        print(socket.getaddrinfo is forksafe._guarded_getaddrinfo)
        """
    )
    assert out.splitlines()[-1] == "True"

import io
import json
import os
import socket
import subprocess
import sys
import threading

from switchyard.lifeline import (
    LOCK_NAME,
    DataDirLock,
    Lifeline,
    claim,
    finish_stopping,
    running_holder,
)
from switchyard.process import pid_alive
from switchyard.render import Console
from switchyard.state import ProcessRecord, read_state, state_path, write_state
from tests.support.processes import wait_until
from tests.switchyard.standins import (
    SLEEPER,
    dead_pid,
    reap,
    record,
    spawn,
    state_for,
)

# Holds the data directory's lock, as the reaper of a killed `switchyard up` does while it
# stops the stack; lets go when its stdin closes.
HOLDS_THE_LOCK = (
    "import fcntl, sys\n"
    "lock = open(sys.argv[1], 'a')\n"
    "fcntl.flock(lock, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()"
)
HOLDS_A_PORT = (
    "import socket, time\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', 0))\n"
    "s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "time.sleep(60)"
)


def hold_the_lock(data_dir) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDS_THE_LOCK, str(data_dir / LOCK_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "locked\n"
    return holder


def let_go(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.stdout.close()
    reap(holder)


def test_a_second_stack_on_the_same_data_dir_is_refused_naming_the_first(tmp_path):
    out = io.StringIO()
    with claim(tmp_path, Console(out)) as lock:
        assert claim(tmp_path, Console(out)) is None
        since = lock.holder().since
    assert (
        f"ERROR switchyard: a stack from {tmp_path}/ is already running "
        f"(switchyard pid {os.getpid()}, started {since})"
    ) in out.getvalue()
    with claim(tmp_path, Console(quiet=True)) as lock:  # free again once it ended
        assert lock.holder().pid == os.getpid()


def test_the_running_holder_is_the_live_process_the_lock_file_names_while_locked(
    tmp_path,
):
    assert running_holder(tmp_path) is None  # no lock file: none, and none made
    assert list(tmp_path.iterdir()) == []
    with claim(tmp_path, Console(quiet=True)) as lock:
        assert running_holder(tmp_path) == lock.holder()
        assert running_holder(tmp_path).pid == os.getpid()
    # The file still names this (live) process, but nothing holds the lock any more.
    assert running_holder(tmp_path) is None
    reaper = hold_the_lock(tmp_path)  # locked by another, but the one named is gone
    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": dead_pid(), "started": None, "since": "earlier"})
    )
    try:
        assert running_holder(tmp_path) is None
    finally:
        let_go(reaper)


def dead_holder_and_its_reaper(tmp_path):
    """A lock file naming a switchyard that is dead, the lock held meanwhile by a stand-in
    for its reaper: the pid named, and the holder to let go."""
    gone = dead_pid()
    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": gone, "started": None, "since": "earlier"})
    )
    return gone, hold_the_lock(tmp_path)


def test_a_dead_holders_lock_is_waited_for_while_its_stack_is_stopped(tmp_path):
    gone, reaper = dead_holder_and_its_reaper(tmp_path)
    out, claimed = io.StringIO(), []
    waiter = threading.Thread(
        target=lambda: claimed.append(claim(tmp_path, Console(out), timeout=30))
    )
    waiter.start()
    wait_until(lambda: f"switchyard pid {gone} " in out.getvalue(), 10)
    assert not claimed
    let_go(reaper)
    waiter.join(timeout=10)
    with claimed[0] as lock:
        assert lock.holder().pid == os.getpid()


def test_a_lock_held_by_a_stranger_is_reported_after_the_wait(tmp_path):
    (tmp_path / LOCK_NAME).write_text("not ours")
    stranger = hold_the_lock(tmp_path)
    out = io.StringIO()
    try:
        assert claim(tmp_path, Console(out), timeout=1) is None
    finally:
        let_go(stranger)
    assert "is still locked after 1s" in out.getvalue()


def test_leftovers_of_a_crashed_stack_are_stopped_and_their_ports_freed(tmp_path):
    leftover = subprocess.Popen(
        [sys.executable, "-c", HOLDS_A_PORT], stdout=subprocess.PIPE, text=True
    )
    port = int(leftover.stdout.readline())
    leftover.stdout.close()
    stranger = spawn(SLEEPER)  # its pid was a stack's once: the start time says not now
    reused = ProcessRecord("order-service-1", "order-service", 2, stranger.pid, 1)
    write_state(
        tmp_path, state_for(dead_pid(), record(leftover, "user-service"), reused)
    )

    with claim(tmp_path, Console(quiet=True)) as lock:
        assert lock is not None
    reap(leftover)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
    assert pid_alive(stranger.pid)
    assert read_state(tmp_path) is None
    stranger.kill()
    reap(stranger)


def test_a_state_file_that_cannot_be_read_is_reported_and_replaced(tmp_path):
    state_path(tmp_path).write_text("")
    out = io.StringIO()
    with claim(tmp_path, Console(out)) as lock:
        assert lock is not None
    assert out.getvalue() == (
        f"WARNING switchyard: cannot read {state_path(tmp_path)}: Expecting value: "
        "line 1 column 1 (char 0); removed it (processes it may list were not "
        "stopped)\n"
    )
    assert not state_path(tmp_path).exists()


def test_when_the_supervisor_ends_without_stopping_the_reaper_does(tmp_path):
    gateway, service = spawn(SLEEPER), spawn(SLEEPER)
    write_state(
        tmp_path,
        state_for(
            os.getpid(), record(gateway, "gateway"), record(service, "user-service")
        ),
    )
    with DataDirLock(tmp_path) as lock:
        assert lock.try_acquire()
        lifeline = Lifeline(tmp_path, lock)
    # The supervisor's descriptors are gone (as after SIGKILL): the reaper holds the lock.
    with DataDirLock(tmp_path) as other:
        assert not other.try_acquire()
    lifeline.release()
    assert lifeline.reaper.wait(timeout=10) == 0
    reap(gateway, service)
    assert read_state(tmp_path) is None
    with DataDirLock(tmp_path) as lock:
        assert lock.try_acquire()


def test_after_a_clean_stop_the_reaper_just_leaves(tmp_path):
    bystander = spawn(SLEEPER)
    with DataDirLock(tmp_path) as lock:
        assert lock.try_acquire()
        lifeline = Lifeline(tmp_path, lock)
        lifeline.release()  # no state file: the stack stopped itself
        assert lifeline.reaper.wait(timeout=10) == 0
    assert pid_alive(bystander.pid)
    bystander.kill()
    reap(bystander)


def test_down_lets_the_reaper_of_a_killed_supervisor_finish_before_checking(tmp_path):
    gone, reaper = dead_holder_and_its_reaper(tmp_path)
    out, finished = io.StringIO(), []
    waiter = threading.Thread(
        target=lambda: finished.append(finish_stopping(tmp_path, Console(out), 30))
    )
    waiter.start()
    wait_until(lambda: f"switchyard pid {gone} " in out.getvalue(), 10)
    assert not finished  # the reaper still holds the lock: nothing stopped beside it
    let_go(reaper)
    waiter.join(timeout=10)
    assert finished == [True]
    # `down` held the lock without naming itself: the lock file still names the dead one.
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == gone


def test_down_stops_what_the_state_file_lists_when_no_reaper_did(tmp_path):
    gateway, service = spawn(SLEEPER), spawn(SLEEPER)
    write_state(
        tmp_path,
        state_for(
            dead_pid(), record(service, "user-service"), record(gateway, "gateway")
        ),
    )
    assert finish_stopping(tmp_path, Console(quiet=True), 5) is True
    reap(gateway, service)
    assert read_state(tmp_path) is None


def test_down_gives_up_on_a_reaper_that_does_not_finish(tmp_path):
    (tmp_path / LOCK_NAME).write_text("not ours")
    stranger = hold_the_lock(tmp_path)
    out = io.StringIO()
    try:
        assert finish_stopping(tmp_path, Console(out), 0.5) is False
    finally:
        let_go(stranger)
    assert "is still locked after" in out.getvalue()

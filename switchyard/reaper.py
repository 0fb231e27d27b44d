"""`python -m switchyard.reaper DATA_DIR SUPERVISOR_PID`: stop the stack if its supervisor
could not. Started by switchyard.lifeline, which says why; stdin is the lifeline."""

import signal
import sys
from pathlib import Path

from switchyard.render import Console
from switchyard.shutdown import stop_records
from switchyard.state import UnreadableState, read_state, remove_state


def main(argv: list[str]) -> int:
    data_dir, supervisor = Path(argv[0]), int(argv[1])
    # Asked to stop, the reaper still finishes its one job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdin.buffer.read()  # returns at EOF: the supervisor has ended, whichever way
    console = Console()
    console.stopping()  # its one job is a stop: a paused terminal must not hold it up
    try:
        state = read_state(data_dir)
    except UnreadableState as problem:  # what to stop is unknown: say so, stop nothing
        console.say(f"WARNING switchyard: {problem}; could not stop the stack")
        return 1
    if state is None or state.supervisor_pid != supervisor:
        return 0  # it stopped its stack itself
    console.say(
        f"WARNING switchyard: switchyard (pid {supervisor}) ended without stopping "
        "its stack; stopping it"
    )
    stop_records(state, console)
    remove_state(data_dir)
    console.say("switchyard: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

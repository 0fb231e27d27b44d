"""Starting a service the way production does: gunicorn with the package's gunicorn_conf."""

import os
import sys

__all__ = ["exec_gunicorn", "gunicorn_argv"]


def exec_gunicorn(package: str) -> None:
    """Replace this process with gunicorn serving `<package>.wsgi:app` with its gunicorn_conf.

    `python -m <package>` then runs exactly what production runs, extra arguments passed on.
    """
    os.execv(sys.executable, [*gunicorn_argv(package), *sys.argv[1:]])


def gunicorn_argv(package: str) -> list[str]:
    """The command line that serves `<package>.wsgi:app` under gunicorn with its gunicorn_conf;
    gunicorn options may follow it."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        f"python:{package}.gunicorn_conf",
        f"{package}.wsgi:app",
    ]

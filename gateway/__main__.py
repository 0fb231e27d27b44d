"""`python -m gateway`: the gateway under gunicorn with the production config, for development."""

import sys

from gunicorn.app.wsgiapp import run


def main() -> None:
    sys.argv = [
        "gunicorn",
        "-c",
        "python:gateway.gunicorn_conf",
        "gateway.wsgi:app",
        *sys.argv[1:],
    ]
    run()


if __name__ == "__main__":
    main()

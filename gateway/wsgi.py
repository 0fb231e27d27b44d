"""gunicorn entry point: `gunicorn -c python:gateway.gunicorn_conf gateway.wsgi:app`."""

from chassis.logs import configure_logging, log_level_from_env
from gateway.app import create_app

configure_logging(log_level_from_env())
app = create_app()

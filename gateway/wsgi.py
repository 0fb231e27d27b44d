"""gunicorn entry point: `gunicorn -c python:gateway.gunicorn_conf gateway.wsgi:app`."""

from discovery.env import env_str
from discovery.web import configure_logging
from gateway.app import create_app

configure_logging(env_str("LOG_LEVEL", "INFO"))
app = create_app()

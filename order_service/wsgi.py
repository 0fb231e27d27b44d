"""WSGI entry point for gunicorn: `gunicorn -c python:order_service.gunicorn_conf order_service.wsgi:app`."""

from order_service import create_app

app = create_app()

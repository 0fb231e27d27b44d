"""WSGI entry point for gunicorn: `gunicorn -c python:user_service.gunicorn_conf user_service.wsgi:app`."""

from user_service import create_app

app = create_app()

"""gunicorn settings for user-service: `gunicorn -c python:user_service.gunicorn_conf user_service.wsgi:app`."""

from discovery.env import env_int, env_str
from user_service.settings import DEFAULT_PORT

bind = f"{env_str('BIND_HOST', '0.0.0.0')}:{env_int('PORT', DEFAULT_PORT, minimum=1, maximum=65535)}"
workers = env_int("WEB_CONCURRENCY", 2, minimum=1)
threads = env_int("GUNICORN_THREADS", 4, minimum=1)
worker_class = "gthread"

"""gunicorn entry point, named as every service's (chassis.launch):
`gunicorn -c python:gateway.gunicorn_conf gateway.wsgi:app`.

Not a WSGI app: the gateway's own worker class (gateway.worker) serves it on an event loop.
"""

from chassis.logs import configure_logging, log_level_from_env
from gateway.app import create_app

configure_logging(log_level_from_env())
app = create_app()

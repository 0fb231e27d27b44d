"""Switchyard API gateway: Consul-routed proxy with strategies, safe retries and ejection.

The app is `gateway.app.create_app`; this package imports nothing at import time, so the
gunicorn master (which reads gateway.gunicorn_conf) loads no metrics library before it
chooses prometheus_client's mode for its workers.
"""

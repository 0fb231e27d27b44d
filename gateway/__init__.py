"""Switchyard API gateway: Consul-routed proxy with strategies, safe retries and ejection."""

from gateway.app import create_app

__all__ = ["create_app"]

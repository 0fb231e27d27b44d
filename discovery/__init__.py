"""Shared discovery layer: Consul client, registration, healthy-instance watching, strategies.

Modules (import them directly; this package imports nothing, so `discovery.env` stays light):

- consul_client  ConsulSettings.from_env, make_consul: py-consul from CONSUL_HTTP_* variables
- instances      Instance, Snapshot: immutable views of Consul's answers
- watcher        HealthWatcher, watch(): blocking-query watcher, one per service per process
- strategies     STRATEGIES, make_strategy: round_robin, random, least_connections, weighted
- client         ServiceClient, StaticSource: service-to-service HTTP with retry elsewhere
- registration   RegistrationSettings, Registration, AntiEntropy: an instance's Consul entry
- gunicorn_hooks service_hooks(): gunicorn settings + register/drain/deregister hooks
- worker         JSONErrorWorker: gunicorn's own error pages (400, 414, 431, ...) as JSON
- errors         DiscoveryError > NoHealthyInstance, ServiceUnavailable
- env, identity   configuration from the environment, instance ids
- web, service    Flask helpers (JSON errors, X-Served-By, health) and the services' app skeleton
- storage         database URL, engine options, table creation
- openapi         the building blocks both services' OpenAPI documents share
"""

"""Consul, and only Consul: registering an instance, watching healthy instances, choosing one.

Modules (import them directly; this package imports nothing):

- consul_client  ConsulSettings.from_env, make_consul: py-consul from CONSUL_HTTP_* variables
- registration   RegistrationSettings, Registration, AntiEntropy: an instance's Consul entry
- gunicorn_hooks service_hooks(): gunicorn settings + register/drain/deregister hooks
- forksafe       guard_name_resolution(): no fork while a thread is inside getaddrinfo
- watcher        HealthWatcher, watch(): blocking-query watcher, one per service per process
- instances      Instance, Snapshot: immutable views of Consul's answers
- strategies     STRATEGIES, make_strategy: round_robin, random, least_connections, weighted
- client         ServiceClient, StaticSource: service-to-service HTTP with retry elsewhere

What is not Consul (configuration, errors, JSON responses, storage, the app skeleton) lives in
`chassis`, which this package builds on.
"""

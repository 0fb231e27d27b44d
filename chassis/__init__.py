"""What every Switchyard service is built on, with nothing of Consul in it (the microservice chassis).

Modules (import them directly; this package imports nothing, so `chassis.env` stays light):

- env        ConfigError and env_str / env_int / env_float / env_choice: config checked at boot
- errors     the exception tree: ConfigError, APIError, DiscoveryError > NoHealthyInstance,
             ServiceUnavailable
- responses  what every response carries: the JSON error shape and X-Served-By
- inputs     reading a request: exact-number JSON bodies, paging parameters, field-set checks
- health     GET /health with a byte-stable body
- logs       LOG_LEVEL and `LEVEL subsystem: message` log lines
- identity   instance ids (`<service>-<host>-<port>`) and the address to advertise
- storage    database URL, engine options, table creation, the read path (reading, read_row,
             read_by_id), the database ping
- pages      lists in pages: offset or keyset (`after`), the count, the `next` link
- openapi    the building blocks both services' OpenAPI documents share, and /openapi.json
- service    ServiceSettings and create_service_app: the services' app skeleton
- worker     JSONErrorWorker: gunicorn's own error pages (400, 414, 431, ...) as JSON; slow
             and idle clients wait on the poller, never in a thread
- arrival    whether a request is all here: the worker's test before a thread takes it
- launch     `python -m <service>`: exec gunicorn with the package's gunicorn_conf

Dependencies point one way: the services, the gateway and discovery import chassis; chassis
imports none of them (tests/test_layers.py reads every import to hold that).
"""

"""devconsul: an embedded, Consul-compatible single-node development agent.

It speaks the subset of Consul's HTTP API that Switchyard and ordinary Consul
clients use (agent, catalog, health, KV with sessions and locks, status, ACL
stubs, the internal/ui summaries) and the rest of what a dev agent serves
(KV transactions, user events, metrics, reload, the log monitor, coordinates,
operator, config entries, the discovery chain, gateway reads), runs
HTTP/TCP/TTL checks and answers blocking queries, all in memory. Start it with ``devconsul agent -dev`` (or
``python -m devconsul``); see devconsul.cli for the flags, including the
hidden dev-only ones.

Deliberate differences from ``consul agent -dev`` (each harmless to clients):
- JSON is compact unless ``?pretty`` (dev-mode Consul indents everything).
- Unknown JSON fields in bodies are refused as in Consul (400, with each
  endpoint's wording; the field lists are in devconsul.schemas): registration,
  checks, catalog writes, sessions, ``/v1/txn``, coordinate updates, autopilot
  and keyring bodies, and config entries of the kinds service-defaults,
  proxy-defaults, service-resolver, service-router, service-splitter,
  terminating-gateway and exported-services. Only top-level keys are
  checked inside Proxy and Connect objects and config entries; other config
  entry kinds (mesh, gateways, intentions, ...) are stored without that check.
- Write endpoints are PUT-only as in Consul >= 1.0, also for the endpoints old
  python-consul releases called with GET.
- Check output changes are written at once (Consul defers output-only
  updates to the catalog for up to 5 minutes).
- Script checks run only with ``-enable-script-checks``, as in Consul;
  ``-enable-local-script-checks`` is accepted but, with no configuration
  files here, admits none (Consul allows those only from its config files).
  Docker, gRPC, UDP, H2PING, alias and OS-service checks are refused.
- Node names ignore case, as in Consul, and a node keeps the spelling it was
  first registered with; Consul takes a catalog register's spelling when the
  register changes something else about the node as well.
- Service and check IDs ignore case in the catalog and are exact at the
  agent, as in Consul: "Web-1" beside "web-1" is two services at the agent
  and one in the catalog. Consul's anti-entropy makes that catalog entry
  alternate between the two at every full sync; here it stays the one
  registered last, deregistering that one brings the other back, and a
  check result of the spelling the catalog does not hold stays at the agent.
- There are no other datacenters and no cluster peers: a foreign ``?dc`` (or
  catalog-write ``Datacenter``) is Consul's ``No path to datacenter``, and any
  ``?peer`` reads as "nothing imported".
- ``merge-central-config`` is accepted, but config entries are not merged
  into the proxies' registrations it answers with.
- ``/v1/agent/self`` has Consul's sections and keys; ``DebugConfig`` is a
  small subset, there is no ``xDS`` section (no gRPC/xDS server), and the
  ``runtime`` stats describe this Python process.
- Sessions: session IDs, node names and check IDs are matched
  case-insensitively as in Consul, and a lock stores the session ID
  lowercased. ``ns``/partition parameters are ignored (Enterprise).
  Lock-delays and TTL timers live in this process, like everything else, so
  a restart forgets them along with the sessions.
- The UI's files are served as Go's http.FileServer serves Consul's (any
  method, index.html for a path naming no file, its redirects), without
  Range or conditional requests and with ``Cache-Control: no-cache``;
  ``/robots.txt`` is not served (Consul answers it with its index.html).
- ``-acl-token`` is one management token, not Consul's ACL system; the
  status endpoints stay open, as in Consul.
- ``/v1/txn`` runs KV operations only; Node, Service and Check operations
  each fail with an error in the 409 answer.
- User events reach only this agent (no gossip); the payload limit is checked
  on name plus payload, not on serf's encoded message.
- Metrics are gauges computed from the store (no counters or timers, no
  hostname in the names). Prometheus output is off, as on a dev agent, until
  ``-hcl 'telemetry { prometheus_retention_time = "60s" }'`` (the only ``-hcl``
  setting understood); it then carries those gauges only (no ``go_*`` or
  ``process_*`` collectors), each with its name as HELP text (Consul gives
  the gauges it defines a description).
- ``/v1/agent/monitor`` streams this process's own log lines (in hclog's
  shape), which are fewer and worded differently from Consul's.
- Coordinates: the agent's own stays at the origin (no peers to measure);
  updates for catalog nodes are stored at once (Consul batches them every
  few seconds).
- Operator: the raft configuration index is 1; the autopilot configuration
  starts at index 0 (Consul writes it when the leader is elected).
- Config entries are stored as sent (top-level keys in CamelCase): no
  per-kind defaults, and ingress/terminating gateway entries create no
  gateway services.
- The discovery chain is the default one (one resolver): routers, splitters,
  redirects, failover and subsets are not compiled; its CustomizationHash is
  not Consul's hash.
"""

from devconsul.config import AgentConfig

__all__ = ["VERSION", "AgentConfig"]

# The Consul version this agent claims to be; clients gate features on it.
VERSION = "1.17.0"

"""devconsul: an embedded, Consul-compatible single-node development agent.

It speaks the subset of Consul's HTTP API that Switchyard and ordinary Consul
clients use (agent, catalog, health, KV, status), runs HTTP/TCP/TTL checks and
answers blocking queries, all in memory. Start it with
``python -m devconsul agent -dev``.
"""

from devconsul.config import AgentConfig

__all__ = ["VERSION", "AgentConfig"]

# The Consul version this agent claims to be; clients gate features on it.
VERSION = "1.17.0"

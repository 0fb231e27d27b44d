"""The `switchyard` CLI: run the whole local system (Consul, services, gateway) in one command."""

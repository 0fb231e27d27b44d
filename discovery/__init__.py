"""Shared discovery layer: Consul client, registration, healthy-instance watching, strategies."""

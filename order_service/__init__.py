"""order-service: the orders resource of Switchyard (Consul name `order-service`, gateway prefix `/orders`)."""

from order_service.app import create_app

__all__ = ["create_app"]

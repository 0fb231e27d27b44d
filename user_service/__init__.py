"""user-service: the users resource of Switchyard (Consul name `user-service`, gateway prefix `/users`)."""

from user_service.app import create_app

__all__ = ["create_app"]

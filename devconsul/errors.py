"""The one exception endpoints raise: it becomes a plain-text Consul error answer."""


class HTTPError(Exception):
    """An error answer: Consul sends these as ``text/plain`` bodies, never JSON."""

    def __init__(self, status: int, message: str = "", headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

"""The one exception endpoints raise: it becomes a plain-text Consul error answer."""


class HTTPError(Exception):
    """An error answer: Consul sends these as ``text/plain`` bodies, never JSON."""

    def __init__(self, status: int, message: str = "", headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def multierror(errors: list[str]) -> str:
    """Errors listed as go-multierror formats them (Consul returns several
    at once this way)."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    listed = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{listed}\n\n"

"""The ``filter`` query parameter: compile once per request, fail loudly.

The expression engine is devconsul.filter (go-bexpr's language); this module
only wires it to requests and to Consul's error answer. Each endpoint passes the
selectors of the Go type Consul filters there (devconsul.filter's *_SELECTORS),
so an unknown field fails as in Consul:
``500 Failed to create boolean expression evaluator: Selector "X.Y" is not valid``.
"""

from collections.abc import Callable, Iterable

from devconsul.errors import HTTPError
from devconsul.filter import FilterError, compile_filter
from devconsul.messages import Request, Response
from devconsul.queries import blocking_read

Predicate = Callable[[dict], bool]


def request_filter(
    req: Request, selectors: Iterable[str] | None = None
) -> Predicate | None:
    expression = req.param("filter")
    if not expression:
        return None
    try:
        return compile_filter(expression, selectors)
    except FilterError as exc:
        raise HTTPError(
            500, f"Failed to create boolean expression evaluator: {exc}"
        ) from None


def apply_filter(predicate: Predicate | None, items: Iterable[dict]) -> list[dict]:
    return [i for i in items if predicate is None or predicate(i)]


def filtered_read(
    app,
    req: Request,
    selectors: Iterable[str],
    index_fn: Callable[[], int],
    rows: Callable[[], list[dict]],
) -> Response:
    """A blocking read of the records `rows()` builds, narrowed by ?filter=.

    The expression is compiled (and its selectors checked) before blocking, so
    a bad filter fails at once, as in Consul.
    """
    predicate = request_filter(req, selectors)
    return blocking_read(app, req, index_fn, lambda: apply_filter(predicate, rows()))

"""/v1/txn: KV operations in one atomic transaction (agent/txn_endpoint.go).

A transaction of reads only takes Consul's read path: no index moves and the
answer carries the query metadata; any failed operation answers 409 with the
errors and no results.
"""

from devconsul import schemas, transactions
from devconsul.decode import (
    Fields,
    decode_failed,
    field_type_error,
    go_base64,
    load_json,
    worded,
)
from devconsul.endpoints.kv import MAX_VALUE
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response
from devconsul.queries import check_datacenter, meta_headers, query_meta
from devconsul.routing import PUT, Route
from devconsul.transactions import KVOp

MAX_OPS = 64


def _decode(raw: bytes) -> list:
    with worded("Failed to parse body: "):
        return _ops(load_json(raw))


def _ops(body) -> list[KVOp | None]:
    if body is None:
        return []
    if not isinstance(body, list):
        raise decode_failed(
            "json: cannot unmarshal object into Go value of type api.TxnOps"
        )
    if len(body) > MAX_OPS:
        raise HTTPError(
            413,
            f"Transaction contains too many operations ({len(body)} > {MAX_OPS})",
        )
    return [_op(Fields(item, "api.TxnOp", schemas.TXN_OP)) for item in body]


def _op(fields: Fields) -> KVOp | None:
    if not fields.has("KV"):
        # Node, Service and Check operations: refused per operation.
        return None
    kv = Fields(fields.raw("KV"), "api.KVTxnOp", schemas.KV_TXN_OP)
    op = KVOp(
        verb=kv.str("Verb"),
        key=kv.str("Key"),
        value=_value(kv.raw("Value")),
        flags=kv.int("Flags"),
        index=kv.int("Index"),
        session=kv.str("Session"),
    )
    if len(op.value) > MAX_VALUE:
        raise HTTPError(
            413,
            f'Value for key "{op.key}" is too large ({len(op.value)} > '
            f"{MAX_VALUE} bytes)",
        )
    return op


def _value(raw) -> bytes:
    """Go decodes a []byte field from base64 text."""
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise field_type_error(raw, "KVTxnOp.KV.Value", "[]uint8")
    try:
        return go_base64(raw)
    except ValueError as exc:
        raise decode_failed(str(exc)) from None


def txn(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    ops = _decode(req.body)
    outcome = transactions.run(app.store, ops)
    body: dict = {"Results": outcome.results, "Errors": _errors(outcome.errors)}
    headers = {}
    if not transactions.is_write(ops):
        # structs.TxnReadResponse embeds QueryMeta (its Index never below 1);
        # no X-Consul-Index header is sent.
        headers = meta_headers(0)
        del headers["X-Consul-Index"]
        body.update(query_meta(0))
    status = 409 if outcome.errors else 200
    return json_response(req, body, status, headers)


def _errors(errors: list[tuple[int, str]]) -> list[dict] | None:
    return [{"OpIndex": i, "What": what} for i, what in errors] or None


ROUTES = [Route("/v1/txn", PUT, txn)]

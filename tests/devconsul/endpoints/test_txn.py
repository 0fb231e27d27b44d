"""/v1/txn against a real devconsul.

Relies on hashicorp/consul agent/txn_endpoint.go (decoding, limits, 409 on
errors, the read-only path's QueryMeta), agent/consul/state/txn.go (verbs and
error texts) and agent/consul/kvs_endpoint.go (kvsPreApply's checks).
"""

import base64

import pytest

import consul

pytestmark = pytest.mark.integration


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _kv(verb: str, key: str, **fields) -> dict:
    return {"KV": {"Verb": verb, "Key": key, **fields}}


@pytest.fixture(scope="module")
def client(module_api):
    return consul.Consul(host="127.0.0.1", port=module_api.agent.port)


def test_writes_apply_together_and_answer_entries_without_values(client, module_api):
    answer = client.txn.put(
        [
            _kv("set", "txn/a", Value=_b64("1"), Flags=7),
            _kv("set", "txn/b", Value=_b64("2")),
            _kv("get", "txn/a"),
        ]
    )
    assert answer["Errors"] is None
    set_a, set_b, get_a = (r["KV"] for r in answer["Results"])
    # Writes come back with Value null, the get with the value (state/txn.go).
    assert (set_a["Key"], set_a["Flags"], set_a["Value"]) == ("txn/a", 7, None)
    assert set_b["Value"] is None
    assert get_a["Value"] == _b64("1")
    # One transaction, one index.
    assert set_a["ModifyIndex"] == set_b["ModifyIndex"] == get_a["ModifyIndex"]
    _, entries = client.kv.get("txn/", recurse=True)
    assert [(e["Key"], e["Value"]) for e in entries] == [
        ("txn/a", b"1"),
        ("txn/b", b"2"),
    ]
    assert "Index" not in answer  # a write transaction has no QueryMeta


def test_a_failed_cas_rolls_back_everything_with_409(client, module_api):
    client.kv.put("txn/cas", "old")
    index, entry = client.kv.get("txn/cas")
    r = module_api.put(
        "/v1/txn",
        json=[
            _kv("set", "txn/cas-side", Value=_b64("x")),
            _kv("cas", "txn/cas", Value=_b64("new"), Index=entry["ModifyIndex"] + 99),
            _kv("get", "txn/nope"),
        ],
    )
    assert (r.status_code, r.headers["Content-Type"]) == (409, "application/json")
    # Every failing op is reported, not only the first (txnDispatch).
    assert r.json() == {
        "Results": None,
        "Errors": [
            {"OpIndex": 1, "What": 'failed to set key "txn/cas", index is stale'},
            {"OpIndex": 2, "What": 'key "txn/nope" doesn\'t exist'},
        ],
    }
    assert client.kv.get("txn/cas-side")[1] is None
    assert client.kv.get("txn/cas")[1]["Value"] == b"old"
    # The failed transaction moved no index: a blocking read stays put.
    assert client.kv.get("txn/cas", index=index, wait="100ms")[0] == index
    with pytest.raises(consul.ConsulException, match="409"):
        client.txn.put([_kv("check-not-exists", "txn/cas")])


def test_read_only_transactions_carry_query_meta(module_api):
    module_api.put("/v1/kv/txn/read", data=b"v")
    r = module_api.put(
        "/v1/txn",
        json=[_kv("get-tree", "txn/read"), _kv("check-index", "txn/read", Index=0)],
    )
    assert r.status_code == 409
    assert r.json()["Errors"][0]["What"].startswith(
        'failed index check for key "txn/read", current modify index '
    )
    r = module_api.put("/v1/txn", json=[_kv("get-or-empty", "txn/missing", Flags=3)])
    assert r.status_code == 200
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.headers["X-Consul-LastContact"] == "0"
    assert "X-Consul-Index" not in r.headers
    body = r.json()
    assert body["Results"] == [
        {
            "KV": {
                "LockIndex": 0,
                "Key": "txn/missing",
                "Flags": 3,
                "Value": None,
                "CreateIndex": 0,
                "ModifyIndex": 0,
            }
        }
    ]
    assert (body["Errors"], body["Index"], body["KnownLeader"]) == (None, 1, True)


def test_locks_and_sessions_inside_a_transaction(client, module_api):
    session = client.session.create(behavior="release", lock_delay=0)
    answer = client.txn.put(
        [
            _kv("lock", "txn/lock", Value=_b64("me"), Session=session),
            _kv("check-session", "txn/lock", Session=session),
        ]
    )
    lock, check = (r["KV"] for r in answer["Results"])
    assert (lock["LockIndex"], lock["Session"]) == (1, session)
    assert check["Session"] == session
    r = module_api.put(
        "/v1/txn",
        json=[
            _kv("lock", "txn/lock2"),
            _kv("unlock", "txn/lock", Session="00000000-0000-0000-0000-000000000000"),
            _kv("delete-cas", "txn/lock", Index=1),
            _kv("bogus", "txn/lock"),
            {"Node": {"Verb": "get", "Node": {"Node": "x"}}},
        ],
    )
    assert r.status_code == 409
    whats = [e["What"] for e in r.json()["Errors"]]
    assert whats[:4] == [
        "missing session",
        (
            'failed to unlock key "txn/lock", lock isn\'t held, or is held by '
            "another session"
        ),
        'failed to delete key "txn/lock", index is stale',
        'unknown KV verb "bogus"',
    ]
    assert client.kv.get("txn/lock")[1]["Session"] == session


def test_pre_checks_run_before_anything(module_api):
    r = module_api.put("/v1/txn", json=[_kv("set", ""), _kv("delete-tree", "")])
    assert (r.status_code, r.json()["Errors"]) == (
        409,
        [{"OpIndex": 0, "What": "Must provide key"}],
    )


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"[{", 400, "Failed to parse body: unexpected EOF"),
        (b'{"KV": {}}', 400, "Failed to parse body: json: cannot unmarshal object"),
        (b'[{"KV": {"Verb": "set", "Key": "k", "Value": "%%%"}}]', 400, "Failed to"),
        (b'[{"KV": {"Verb": 1}}]', 400, "Failed to parse body: json: cannot"),
        (
            b'[{"KV": {"Verb": "set", "Key": "k", "Value": 1}}]',
            400,
            (
                "Failed to parse body: json: cannot unmarshal number into Go struct "
                "field KVTxnOp.KV.Value of type []uint8"
            ),
        ),
        (
            b"[" + b",".join([b'{"KV": {"Verb": "get", "Key": "k"}}'] * 65) + b"]",
            413,
            "Transaction contains too many operations (65 > 64)",
        ),
    ],
)
def test_bad_bodies_get_consuls_errors(module_api, body, status, message):
    r = module_api.put("/v1/txn", data=body)
    assert r.status_code == status
    assert r.text.startswith(message)


def test_a_value_over_the_kv_limit_is_refused(module_api):
    big = base64.b64encode(b"x" * (512 * 1024 + 1)).decode()
    r = module_api.put("/v1/txn", json=[_kv("set", "big", Value=big)])
    assert (r.status_code, r.text) == (
        413,
        'Value for key "big" is too large (524289 > 524288 bytes)',
    )


def test_an_empty_transaction_answers_empty_results(module_api):
    r = module_api.put("/v1/txn", json=[])
    assert (r.status_code, r.json()["Results"], r.json()["Errors"]) == (200, [], None)
    assert module_api.get("/v1/txn").status_code == 405


@pytest.mark.parametrize(
    "op, field",
    [
        ({"KV": {"Verb": "get", "Key": "k", "Vlaue": ""}}, "Vlaue"),
        ({"KV": {"Verb": "get", "Key": "k"}, "Session": {}}, "Session"),
    ],
)
def test_unknown_fields_are_refused(module_api, op, field):
    """agent/txn_endpoint.go decodes api.TxnOps with decodeBody, which is
    lib.DecodeJSON with DisallowUnknownFields (lib/json.go); api/txn.go has
    no Session operation in TxnOp."""
    r = module_api.put("/v1/txn", json=[op])
    assert (r.status_code, r.text) == (
        400,
        f'Failed to parse body: json: unknown field "{field}"',
    )


def test_kv_namespace_and_partition_are_fields_of_the_api_op(module_api):
    """api.KVTxnOp declares Namespace and Partition itself (txn_endpoint.go
    reads in.KV.Namespace); CE's EnterpriseMetaInitializer ignores them."""
    op = {"KV": {"Verb": "get-tree", "Key": "t/", "Namespace": "", "Partition": ""}}
    assert module_api.put("/v1/txn", json=[op]).status_code == 200

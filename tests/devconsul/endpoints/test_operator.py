"""/v1/operator/* against a real devconsul, a lone dev server.

Relies on hashicorp/consul agent/operator_endpoint.go (parameters, messages,
autopilot CAS, 429 when unhealthy, usage), agent/consul/operator_raft_endpoint.go
("... was not found in the Raft configuration"; raft refusing a configuration
without voters), agent/rpc/operator (transfer-leader over gRPC; raft's "cannot
find peer"), agent/keyring.go with serf's key manager ("Keyring is empty
(encryption not enabled)", one failure per pool, WAN first) and api/operator_*.go.
"""

import pytest

import consul

pytestmark = pytest.mark.integration


def _node_id(api) -> str:
    return api.get("/v1/agent/self").json()["Config"]["NodeID"]


def test_raft_configuration_has_one_voting_leader(client, api):
    assert client.operator.raft_config() == {
        "Servers": [
            {
                "ID": _node_id(api),
                "Node": "test-node",
                "Address": "127.0.0.1:8300",
                "Leader": True,
                "ProtocolVersion": "3",
                "Voter": True,
            }
        ],
        "Index": 1,
    }


def test_the_lone_peer_cannot_be_removed(client, api):
    node_id = _node_id(api)
    for params in ({"id": node_id}, {"address": "127.0.0.1:8300"}):
        r = api.request("DELETE", "/v1/operator/raft/peer", params=params)
        assert (r.status_code, r.text) == (
            500,
            "need at least one voter in configuration: {[]}",
        )
    r = api.request("DELETE", "/v1/operator/raft/peer", params={"id": "nope"})
    assert (r.status_code, r.text) == (
        500,
        'id "nope" was not found in the Raft configuration',
    )
    r = api.request(
        "DELETE", "/v1/operator/raft/peer", params={"address": "1.2.3.4:8300"}
    )
    assert r.text == 'address "1.2.3.4:8300" was not found in the Raft configuration'
    r = api.request("DELETE", "/v1/operator/raft/peer")
    assert (r.status_code, r.text) == (
        400,
        (
            "Must specify either ?id with the server's ID or ?address with IP:port of "
            "peer to remove"
        ),
    )
    r = api.request("DELETE", "/v1/operator/raft/peer?id=a&address=b")
    assert (r.status_code, r.text) == (400, "Must specify only one of ?id or ?address")
    with pytest.raises(consul.ConsulException, match="need at least one voter"):
        client.operator.raft_remove_peer(peer_id=node_id)


def test_leadership_has_nowhere_to_go(client, api):
    with pytest.raises(consul.ConsulException, match="cannot find peer"):
        client.operator.raft_transfer_leader()
    r = api.request("POST", "/v1/operator/raft/transfer-leader", params={"id": "x"})
    assert (r.status_code, r.text) == (
        500,
        "rpc error: code = Unknown desc = Could not find address for server id x",
    )
    assert api.get("/v1/operator/raft/transfer-leader").status_code == 405


def test_autopilot_configuration_defaults_and_cas(client, api):
    config = client.operator.autopilot_configuration()
    assert config == {
        "CleanupDeadServers": True,
        "LastContactThreshold": "200ms",
        "MaxTrailingLogs": 250,
        "MinQuorum": 0,
        "ServerStabilizationTime": "10s",
        "RedundancyZoneTag": "",
        "DisableUpgradeMigration": False,
        "UpgradeVersionTag": "",
        "CreateIndex": 0,
        "ModifyIndex": 0,
    }
    # Fields left out take api.NewAutopilotConfiguration's defaults.
    assert client.operator.update_autopilot_configuration(max_trailing_logs=300) is True
    updated = client.operator.autopilot_configuration()
    assert (updated["MaxTrailingLogs"], updated["LastContactThreshold"]) == (
        300,
        "200ms",
    )
    stale = updated["ModifyIndex"] - 1
    assert (
        client.operator.update_autopilot_configuration(min_quorum=3, cas=stale) is False
    )
    assert (
        client.operator.update_autopilot_configuration(
            min_quorum=3, last_contact_threshold="1s", cas=updated["ModifyIndex"]
        )
        is True
    )
    final = client.operator.autopilot_configuration()
    assert (
        final["MinQuorum"],
        final["MaxTrailingLogs"],
        final["LastContactThreshold"],
    ) == (
        3,
        250,
        "1s",
    )
    r = api.put("/v1/operator/autopilot/configuration?cas=x", json={})
    assert (r.status_code, r.text) == (
        400,
        'Error parsing cas value: strconv.ParseUint: parsing "x": invalid syntax',
    )
    r = api.put("/v1/operator/autopilot/configuration", data=b"{bad")
    assert r.status_code == 400
    assert r.text.startswith("Error parsing autopilot config: invalid character")


def test_autopilot_health(client, api):
    health = client.operator.autopilot_health()
    (server,) = health["Servers"]
    assert (health["Healthy"], health["FailureTolerance"]) == (True, 0)
    assert server["ID"] == _node_id(api)
    assert {
        k: server[k] for k in ("Name", "Leader", "Voter", "SerfStatus", "LastContact")
    } == {
        "Name": "test-node",
        "Leader": True,
        "Voter": True,
        "SerfStatus": "alive",
        "LastContact": "0s",
    }
    assert server["StableSince"].endswith("Z")


FAILURES = (
    "4 errors occurred:\n"
    "\t* WAN error: 1/1 nodes reported failure\n"
    "\t* test-node.dc1: {message}\n"
    "\t* dc1 (LAN) error: 1/1 nodes reported failure\n"
    "\t* test-node: {message}\n\n"
)


def test_keyring_without_gossip_encryption(client, api):
    r = api.get("/v1/operator/keyring")
    assert (r.status_code, r.text) == (
        500,
        FAILURES.format(message="Keyring is empty (encryption not enabled)"),
    )
    with pytest.raises(consul.ConsulException, match="encryption not enabled"):
        client.operator.keyring_list()
    key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
    for method in ("POST", "PUT", "DELETE"):
        r = api.request(method, "/v1/operator/keyring", json={"Key": key})
        assert (r.status_code, r.text) == (
            500,
            FAILURES.format(message="No keyring to modify (encryption not enabled)"),
        )
    r = api.request("POST", "/v1/operator/keyring", json={"Key": "not!base64"})
    assert r.text == (
        "2 errors occurred:\n"
        "\t* WAN error: illegal base64 data at input byte 3\n"
        "\t* dc1 (LAN) error: illegal base64 data at input byte 3\n\n"
    )
    r = api.get("/v1/operator/keyring?local-only=true")
    assert r.text.startswith("2 errors occurred:\n\t* dc1 (LAN) error")


@pytest.mark.parametrize(
    "method, query, message",
    [
        (
            "GET",
            "relay-factor=x",
            'Error parsing relay factor: strconv.Atoi: parsing "x": invalid syntax',
        ),
        (
            "GET",
            "relay-factor=6",
            "Invalid relay-factor: Relay factor must be in range: [0, 5]",
        ),
        (
            "GET",
            "local-only=maybe",
            'Error parsing local-only: strconv.ParseBool: parsing "maybe": invalid syntax',
        ),
        (
            "PUT",
            "local-only=true",
            "Invalid use of local-only: local-only can only be set for list requests",
        ),
    ],
)
def test_keyring_parameters(api, method, query, message):
    r = api.request(method, f"/v1/operator/keyring?{query}", json={"Key": ""})
    assert (r.status_code, r.text) == (400, message)


def test_usage_counts_services(client, api):
    api.register({"Name": "web", "Port": 80})
    api.register({"Name": "web", "ID": "web-2", "Port": 81})
    api.register(
        {
            "Name": "web-proxy",
            "Kind": "connect-proxy",
            "Port": 21000,
            "Proxy": {"DestinationServiceName": "web"},
        }
    )
    usage = client.operator.usage()
    assert usage["Usage"] == {
        "dc1": {
            "Services": 3,  # consul, web, web-proxy
            "ServiceInstances": 4,
            "ConnectServiceInstances": {
                "api-gateway": 0,
                "connect-native": 0,
                "connect-proxy": 1,
                "ingress-gateway": 0,
                "mesh-gateway": 0,
                "terminating-gateway": 0,
            },
            "BillableServiceInstances": 2,
        }
    }
    assert (usage["KnownLeader"], usage["ConsistencyLevel"]) == (True, "leader")
    r = api.get("/v1/operator/usage?stale")
    assert r.json()["ConsistencyLevel"] == "stale"
    assert r.json()["Index"] == int(r.headers["X-Consul-Index"])


def test_unknown_fields_are_refused(api):
    """agent/operator_endpoint.go decodes api.AutopilotConfiguration and
    keyringArgs with decodeBody, which disallows unknown fields (lib/json.go)."""
    r = api.put(
        "/v1/operator/autopilot/configuration", json={"CleanupDeadServer": False}
    )
    assert (r.status_code, r.text) == (
        400,
        'Error parsing autopilot config: json: unknown field "CleanupDeadServer"',
    )
    assert api.get("/v1/operator/autopilot/configuration").json()["CleanupDeadServers"]
    r = api.request("POST", "/v1/operator/keyring", json={"Key": "", "Keys": []})
    assert (r.status_code, r.text) == (
        400,
        'Request decode failed: json: unknown field "Keys"',
    )

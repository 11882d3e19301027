"""TLS, mutual TLS and bearer tokens, with certificates of a private CA made by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gatekeeper import errors
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.client import GatekeeperClient, RejectedCall, RetryPolicy, Security
from tests.integration.conftest import StartServer
from tests.integration.grpc_server import Pki, judge_request

TOKEN = "s3cret-token-for-tests"
ONCE = RetryPolicy(attempts=1)


def assert_refused(target: str, security: Security | None = None) -> None:
    """The handshake fails: the client sees UNAVAILABLE (after one attempt)."""
    client = GatekeeperClient(target, timeout=5, retry=ONCE, security=security)
    with client, pytest.raises(errors.Unavailable):
        client.judge(judge_request())


def test_tls_round_trip(start_server: StartServer, pki: Pki) -> None:
    server = start_server(tls_cert=pki.server_cert, tls_key=pki.server_key)
    security = Security.from_files(ca=pki.ca)
    with GatekeeperClient(server.target, security=security) as client:
        assert client.judge(judge_request()).decision == pb.DECISION_PASS


def test_tls_server_refuses_plaintext_and_untrusted_clients_refuse_it(
    start_server: StartServer, pki: Pki
) -> None:
    server = start_server(tls_cert=pki.server_cert, tls_key=pki.server_key)
    assert_refused(server.target)
    wrong_ca = Security.from_files(ca=pki.rogue_cert)  # not the CA that signed the server
    assert_refused(server.target, wrong_ca)


def test_mutual_tls_requires_a_client_certificate_of_the_ca(
    start_server: StartServer, pki: Pki
) -> None:
    server = start_server(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca)
    trusted = Security.from_files(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    with GatekeeperClient(server.target, security=trusted) as client:
        assert client.judge(judge_request()).decision == pb.DECISION_PASS
    for security in (
        Security.from_files(ca=pki.ca),
        Security.from_files(ca=pki.ca, cert=pki.rogue_cert, key=pki.rogue_key),
    ):
        assert_refused(server.target, security)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def test_token_auth_rejects_missing_and_wrong_tokens(
    start_server: StartServer, token_file: Path
) -> None:
    server = start_server(auth_token_file=token_file)
    with grpc.insecure_channel(server.target) as channel:
        judge = pb_grpc.GatekeeperStub(channel).Judge
        for metadata in [
            (),
            (("authorization", "Bearer wrong"),),
            (("authorization", TOKEN),),
            (("authorization", f"Basic {TOKEN}"),),
            (("authorization", f"Bearer {TOKEN}x"),),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                judge(judge_request(), timeout=5, metadata=metadata)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "Bearer" in cast(str, caught.value.details())
        verdict = judge(
            judge_request(), timeout=5, metadata=(("authorization", f"Bearer {TOKEN}"),)
        )
        assert verdict.decision == pb.DECISION_PASS
    assert (
        server.running.metrics.sample(
            "gatekeeper_grpc_calls_total", {"method": "Judge", "code": "UNAUTHENTICATED"}
        )
        == 5
    )


def test_token_auth_leaves_health_open_and_guards_reflection(
    start_server: StartServer, token_file: Path
) -> None:
    server = start_server(auth_token_file=token_file)
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as caught:
            list(reflection.ServerReflectionInfo(iter([ask]), timeout=5))
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_client_sends_the_token_and_maps_rejection(
    start_server: StartServer, pki: Pki, token_file: Path
) -> None:
    server = start_server(
        tls_cert=pki.server_cert, tls_key=pki.server_key, auth_token_file=token_file
    )
    good = Security.from_files(ca=pki.ca, token_file=token_file)
    with GatekeeperClient(server.target, security=good) as client:
        assert client.judge(judge_request()).decision == pb.DECISION_PASS
    bad = Security(root_certificates=pki.ca.read_bytes(), token="nope")
    client = GatekeeperClient(server.target, security=bad)
    with client, pytest.raises(RejectedCall) as caught:
        client.judge(judge_request())
    assert caught.value.code == "UNAUTHENTICATED"
    assert caught.value.reason == "UNAUTHENTICATED"

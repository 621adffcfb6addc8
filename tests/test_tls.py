"""TLS on gRPC links is a setting: with certificate paths set, a service serves TLS and
requires client certificates signed by the CA (mTLS); clients verify the server."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import provider_service_pb2_grpc

from services.provider_registry.config import Settings as RegistrySettings
from services.provider_registry.server import build_server
from services.runtime.channels import internal_channel, raw_channel
from services.runtime.config import TlsSettings
from services.runtime.healthcheck import check


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _issue(ca_key, ca_cert, common_name: str, folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{common_name}.crt", folder / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("synthtasks test CA"))
        .issuer_name(_name("synthtasks test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_cert, server_key = _issue(ca_key, ca_cert, "registry", folder)
    client_cert, client_key = _issue(ca_key, ca_cert, "gateway", folder)
    return {
        "ca": folder / "ca.crt",
        "server_cert": server_cert,
        "server_key": server_key,
        "client_cert": client_cert,
        "client_key": client_key,
    }


@pytest.fixture(scope="module")
def tls_registry(pki, make_database):
    settings = RegistrySettings(
        internal_token="tls-test",
        master_keys=Fernet.generate_key().decode(),
        database_url=make_database("tls"),
        metrics_port=0,
        tls_cert_file=pki["server_cert"],
        tls_key_file=pki["server_key"],
        tls_ca_file=pki["ca"],
    )
    server = build_server(settings, "127.0.0.1:0")
    yield f"127.0.0.1:{server.port}"
    server.stop(0)


def list_providers(channel: grpc.Channel) -> list:
    stub = provider_service_pb2_grpc.ProviderServiceStub(channel)
    return list(stub.ListProviders(pb.ListProvidersRequest(), timeout=5).providers)


def test_a_client_with_a_certificate_from_the_ca_is_served_over_tls(pki, tls_registry):
    client = RegistrySettings(
        internal_token="tls-test",
        master_keys="unused",
        tls_cert_file=pki["client_cert"],
        tls_key_file=pki["client_key"],
        tls_ca_file=pki["ca"],
    )
    with internal_channel(tls_registry, client) as channel:
        assert list_providers(channel) == []


def test_a_plaintext_client_is_refused(tls_registry):
    with grpc.insecure_channel(tls_registry) as channel, pytest.raises(grpc.RpcError) as raised:
        list_providers(channel)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_tls_client_without_a_client_certificate_is_refused(pki, tls_registry):
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    with grpc.secure_channel(tls_registry, credentials) as channel, pytest.raises(grpc.RpcError) as raised:
        list_providers(channel)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_container_healthcheck_speaks_tls_from_the_same_settings(pki, tls_registry, monkeypatch):
    monkeypatch.setenv("SYNTHTASKS_TLS_CA_FILE", str(pki["ca"]))
    monkeypatch.setenv("SYNTHTASKS_TLS_CERT_FILE", str(pki["client_cert"]))
    monkeypatch.setenv("SYNTHTASKS_TLS_KEY_FILE", str(pki["client_key"]))
    assert TlsSettings().tls_cert_file == pki["client_cert"]  # the settings read the environment
    assert check(tls_registry)


def _serving(channel: grpc.Channel) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _refused(channel: grpc.Channel) -> bool:
    with pytest.raises(grpc.RpcError) as raised:
        _serving(channel)
    return raised.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def public_gateway(pki, infra, redis_namespace):
    """Factory: a gateway whose internal links use mTLS and whose public port has TLS settings of its own."""
    from services.gateway.config import Settings as GatewaySettings
    from services.gateway.server import build_server as build_gateway

    started = []

    def start(**public_tls) -> str:
        settings = GatewaySettings(
            internal_token="tls-test",
            redis_url=infra.redis_url,
            redis_namespace=redis_namespace,
            metrics_port=0,
            tls_cert_file=pki["client_cert"],
            tls_key_file=pki["client_key"],
            tls_ca_file=pki["ca"],
            public_tls_cert_file=pki["server_cert"],
            public_tls_key_file=pki["server_key"],
            **public_tls,
        )
        built = build_gateway(settings, "127.0.0.1:0")
        started.append(built)
        return f"127.0.0.1:{built.port}"

    yield start
    for built in started:
        built.stop(0)


def test_the_public_port_serves_tls_without_client_certificates_while_internal_links_keep_mtls(
    pki, public_gateway, tls_registry
):
    address = public_gateway()
    server_only = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())

    with grpc.secure_channel(address, server_only) as channel:
        assert _serving(channel)
    with grpc.insecure_channel(address) as channel:
        assert _refused(channel), "the control: the public port does speak TLS"
    with grpc.secure_channel(tls_registry, server_only) as channel:
        assert _refused(channel), "the internal registry still requires a client certificate"


def test_the_public_port_requires_client_certificates_only_when_given_a_client_ca(pki, public_gateway):
    address = public_gateway(public_tls_client_ca_file=pki["ca"])
    roots = pki["ca"].read_bytes()

    with grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots)) as channel:
        assert _refused(channel)
    with_certificate = grpc.ssl_channel_credentials(
        root_certificates=roots,
        private_key=pki["client_key"].read_bytes(),
        certificate_chain=pki["client_cert"].read_bytes(),
    )
    with grpc.secure_channel(address, with_certificate) as channel:
        assert _serving(channel)


def test_clients_may_trust_the_system_roots_alone_or_with_the_ca_file(pki, tls_registry):
    client_certificate = {"tls_cert_file": pki["client_cert"], "tls_key_file": pki["client_key"]}
    system_only = TlsSettings(tls_system_roots=True, **client_certificate)
    system_and_ca = TlsSettings(tls_system_roots=True, tls_ca_file=pki["ca"], **client_certificate)

    # The test CA is no system root: trusting only the system's, the client refuses the server.
    with raw_channel(tls_registry, system_only) as channel:
        assert _refused(channel)
    with raw_channel(tls_registry, system_and_ca) as channel:
        assert _serving(channel)


def test_the_cli_can_trust_the_system_roots_or_a_ca_file(pki, public_gateway, tmp_path):
    from synthtasks_cli.gateway import ClientSettings, open_channel

    address = public_gateway()
    state = {"SYNTHTASKS_STATE_DIR": str(tmp_path)}
    from_env = ClientSettings.resolve(gateway=address, environ={**state, "SYNTHTASKS_TLS_SYSTEM_ROOTS": "true"})
    from_ca = ClientSettings.resolve(gateway=address, tls_ca=str(pki["ca"]), environ=state)

    assert from_env.tls_system_roots and not from_ca.tls_system_roots
    with open_channel(from_env) as channel:
        assert _refused(channel), "our test CA is not among the system's roots"
    with open_channel(from_ca) as channel:
        assert _serving(channel)

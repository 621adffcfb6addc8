"""Wiring of the provider registry: database, key vault, servicers, gRPC server."""

from __future__ import annotations

from psycopg_pool import ConnectionPool
from synthtasks.internal.v1 import auth_service_pb2_grpc, credential_service_pb2_grpc
from synthtasks.v1 import audit_service_pb2_grpc, provider_service_pb2_grpc, token_service_pb2_grpc

from services.provider_registry.audit import AuditTrail
from services.provider_registry.config import Settings
from services.provider_registry.key_vault import KeyVault
from services.provider_registry.registry import Registry
from services.provider_registry.repository import ProviderRepository, TokenRepository
from services.provider_registry.servicer import (
    AuditServicer,
    AuthServicer,
    CredentialServicer,
    ProviderServicer,
    TokenServicer,
)
from services.runtime.database import create_pool, database_answers
from services.runtime.migrations import migrate
from services.runtime.readiness import ReadinessWatch
from services.runtime.server import BuiltServer, Registration, create_server

SERVICE = "provider-registry"
MIGRATIONS = "services.provider_registry.migrations"


def build_registry(settings: Settings) -> tuple[Registry, ConnectionPool]:
    """The registry's use cases on a fresh pool (returned so the caller can close it)."""
    vault = KeyVault(settings.master_keys.get_secret_value())
    pool = create_pool(settings.database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size)
    registry = Registry(
        ProviderRepository(pool, vault),
        TokenRepository(pool),
        AuditTrail(pool),
        validation_timeout=settings.validation_timeout_seconds,
        allow_private_endpoints=settings.allow_private_endpoints,
    )
    return registry, pool


def build_server(settings: Settings, address: str | None = None) -> BuiltServer:
    """Migrate the database, then start serving on `address` (default: the settings')."""
    migrate(settings.database_url, MIGRATIONS)
    registry, pool = build_registry(settings)
    built = create_server(
        address or settings.listen_address,
        [
            Registration(
                ProviderServicer(registry),
                provider_service_pb2_grpc.add_ProviderServiceServicer_to_server,
                "synthtasks.v1.ProviderService",
            ),
            Registration(
                TokenServicer(registry),
                token_service_pb2_grpc.add_TokenServiceServicer_to_server,
                "synthtasks.v1.TokenService",
            ),
            Registration(
                AuditServicer(registry),
                audit_service_pb2_grpc.add_AuditServiceServicer_to_server,
                "synthtasks.v1.AuditService",
            ),
            Registration(
                CredentialServicer(registry),
                credential_service_pb2_grpc.add_CredentialServiceServicer_to_server,
                "synthtasks.internal.v1.CredentialService",
            ),
            Registration(
                AuthServicer(registry),
                auth_service_pb2_grpc.add_AuthServiceServicer_to_server,
                "synthtasks.internal.v1.AuthService",
            ),
        ],
        service=SERVICE,
        settings=settings,
        internal_only=True,
    )
    built.on_stop.append(pool.close)
    readiness = ReadinessWatch(built.health, database_answers(pool))
    readiness.start()
    built.on_stop.insert(0, readiness.stop)  # first: it uses the pool
    return built

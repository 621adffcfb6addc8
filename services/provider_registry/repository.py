"""All SQL of the provider registry. API keys enter and leave this module encrypted
only through the KeyVault; no query ever reads a plaintext key column (there is none)."""

from __future__ import annotations

import builtins
import uuid
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.provider_registry.key_vault import KeyUnreadable, KeyVault, key_hint
from services.provider_registry.records import Assignment, Limits, ProviderRecord, TokenRecord, Validation
from services.runtime.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound
from services.vocabulary import etags
from services.vocabulary.quoting import quoted
from services.vocabulary.reasons import Reason

_PROVIDER_COLUMNS = """
    id, display_name, kind, endpoint, deployment, api_version, model, organization, key_hint,
    requests_per_minute, tokens_per_minute, max_concurrent_requests, max_choices_per_request,
    request_timeout_ms, last_validation_state, last_validation_message, last_validation_latency_ms,
    last_validated_at, version, created_at, updated_at, allowed_models, structured_output
"""


_Row = TypeVar("_Row")


def _returned(cur: psycopg.Cursor[_Row]) -> _Row:
    """The row an INSERT or UPDATE ... RETURNING wrote: there is one, or the statement raised."""
    row = cur.fetchone()
    assert row is not None, "a RETURNING statement that succeeded returns its row"
    return row


def _provider(row: dict[str, Any]) -> ProviderRecord:
    return ProviderRecord(
        id=row["id"],
        display_name=row["display_name"],
        kind=row["kind"],
        endpoint=row["endpoint"],
        deployment=row["deployment"],
        api_version=row["api_version"],
        model=row["model"],
        organization=row["organization"],
        key_hint=row["key_hint"],
        limits=Limits(row["requests_per_minute"], row["tokens_per_minute"], row["max_concurrent_requests"]),
        max_choices_per_request=row["max_choices_per_request"],
        request_timeout_ms=row["request_timeout_ms"],
        allowed_models=list(row["allowed_models"]),
        structured_output=row["structured_output"],
        validation=Validation(
            row["last_validation_state"],
            row["last_validation_message"],
            row["last_validation_latency_ms"],
            row["last_validated_at"],
        ),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _check_etag(record: ProviderRecord, etag: str, *, field: str) -> None:
    expected = etags.expected_version(etag, field=field)
    if expected is not None and expected != record.version:
        raise Aborted(f"{record.name} changed since etag {etag}; read it again")


class ProviderRepository:
    def __init__(self, pool: ConnectionPool, vault: KeyVault) -> None:
        self._pool = pool
        self._vault = vault

    def _encrypted(self, api_key: str) -> bytes | None:
        return self._vault.encrypt(api_key) if api_key else None

    def create(self, record: ProviderRecord) -> ProviderRecord:
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    f"""INSERT INTO providers (id, display_name, kind, endpoint, deployment, api_version, model,
                        organization, api_key_encrypted, key_hint, requests_per_minute, tokens_per_minute,
                        max_concurrent_requests, max_choices_per_request, request_timeout_ms, allowed_models,
                        structured_output)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    RETURNING {_PROVIDER_COLUMNS}""",
                    (
                        record.id,
                        record.display_name.strip(),
                        record.kind,
                        record.endpoint,
                        record.deployment,
                        record.api_version,
                        record.model,
                        record.organization,
                        self._encrypted(record.api_key),
                        key_hint(record.api_key),
                        record.limits.requests_per_minute,
                        record.limits.tokens_per_minute,
                        record.limits.max_concurrent_requests,
                        record.max_choices_per_request,
                        record.request_timeout_ms,
                        record.allowed_models,
                        record.structured_output,
                    ),
                )
                return _provider(_returned(cur))
        except psycopg.errors.UniqueViolation as error:
            if "display_name" in (error.diag.constraint_name or ""):
                raise AlreadyExists(
                    f"a provider named {quoted(record.display_name.strip())} exists already",
                    reason=Reason.DISPLAY_NAME_TAKEN,
                ) from None
            raise AlreadyExists(f"providers/{record.id} exists already", reason=Reason.PROVIDER_EXISTS) from None

    def id_taken(self, provider_id: str) -> bool:
        with self._pool.connection() as conn:
            return conn.execute("SELECT 1 FROM providers WHERE id = %s", (provider_id,)).fetchone() is not None

    def get(self, provider_id: str) -> ProviderRecord:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"SELECT {_PROVIDER_COLUMNS} FROM providers WHERE id = %s", (provider_id,)).fetchone()
        if row is None:
            raise NotFound(f"providers/{provider_id} does not exist", reason=Reason.PROVIDER_NOT_FOUND)
        return _provider(row)

    def get_with_key(self, provider_id: str) -> ProviderRecord:
        """The provider with its decrypted key: only for live checks and workers."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_PROVIDER_COLUMNS}, api_key_encrypted FROM providers WHERE id = %s", (provider_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"providers/{provider_id} does not exist", reason=Reason.PROVIDER_NOT_FOUND)
        record = _provider(row)
        if row["api_key_encrypted"] is not None:
            try:
                record.api_key = self._vault.decrypt(row["api_key_encrypted"])
            except KeyUnreadable:
                # Not transient: no retry helps until an admin acts, so callers (and the
                # jobs of this provider) fail now and say why.
                raise FailedPrecondition(
                    f"the stored API key of {record.name} cannot be decrypted with the configured master keys;"
                    " set the key again (UpdateProvider api_key) or restore the master key that encrypted it",
                    reason=Reason.PROVIDER_KEY_UNREADABLE,
                ) from None
        return record

    def list(self, *, after_id: str | None, limit: int) -> list[ProviderRecord]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_PROVIDER_COLUMNS} FROM providers WHERE %s::text IS NULL OR id > %s ORDER BY id LIMIT %s",
                (after_id, after_id, limit),
            ).fetchall()
        return [_provider(r) for r in rows]

    def update(self, provider_id: str, etag: str, apply: Any) -> ProviderRecord:
        """Apply `apply(record) -> record` under a row lock; the result is checked by the
        caller's `apply` and written whole. Returns the stored provider."""
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    f"SELECT {_PROVIDER_COLUMNS}, api_key_encrypted FROM providers WHERE id = %s FOR UPDATE",
                    (provider_id,),
                ).fetchone()
                if row is None:
                    raise NotFound(f"providers/{provider_id} does not exist", reason=Reason.PROVIDER_NOT_FOUND)
                current = _provider(row)
                _check_etag(current, etag, field="provider.etag")
                key_changed, updated = apply(current)
                encrypted = self._encrypted(updated.api_key) if key_changed else row["api_key_encrypted"]
                hint = key_hint(updated.api_key) if key_changed else current.key_hint
                cur.execute(
                    f"""UPDATE providers SET display_name = %s, endpoint = %s, deployment = %s, api_version = %s,
                        model = %s, organization = %s, api_key_encrypted = %s, key_hint = %s,
                        requests_per_minute = %s, tokens_per_minute = %s, max_concurrent_requests = %s,
                        max_choices_per_request = %s, request_timeout_ms = %s, allowed_models = %s,
                        structured_output = %s,
                        version = version + 1, updated_at = now()
                    WHERE id = %s RETURNING {_PROVIDER_COLUMNS}""",
                    (
                        updated.display_name.strip(),
                        updated.endpoint,
                        updated.deployment,
                        updated.api_version,
                        updated.model,
                        updated.organization,
                        encrypted,
                        hint,
                        updated.limits.requests_per_minute,
                        updated.limits.tokens_per_minute,
                        updated.limits.max_concurrent_requests,
                        updated.max_choices_per_request,
                        updated.request_timeout_ms,
                        updated.allowed_models,
                        updated.structured_output,
                        provider_id,
                    ),
                )
                return _provider(_returned(cur))
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists("another provider has this display name", reason=Reason.DISPLAY_NAME_TAKEN) from None

    def record_validation(self, provider_id: str, validation: Validation) -> ProviderRecord:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"""UPDATE providers SET last_validation_state = %s, last_validation_message = %s,
                    last_validation_latency_ms = %s, last_validated_at = now(), version = version + 1
                WHERE id = %s RETURNING {_PROVIDER_COLUMNS}""",
                (validation.state, validation.message, validation.latency_ms, provider_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"providers/{provider_id} does not exist", reason=Reason.PROVIDER_NOT_FOUND)
        return _provider(row)

    def delete(self, provider_id: str, *, force: bool, etag: str) -> None:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_PROVIDER_COLUMNS} FROM providers WHERE id = %s FOR UPDATE", (provider_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"providers/{provider_id} does not exist", reason=Reason.PROVIDER_NOT_FOUND)
            _check_etag(_provider(row), etag, field="etag")
            projects = [
                r["project"]
                for r in cur.execute(
                    "SELECT project FROM project_providers WHERE provider_id = %s ORDER BY project", (provider_id,)
                )
            ]
            if projects and not force:
                shown = ", ".join(f"projects/{p}" for p in projects[:5])
                raise FailedPrecondition(
                    f"providers/{provider_id} is assigned to {shown}; unassign it or delete with force",
                    reason=Reason.PROVIDER_ASSIGNED,
                )
            cur.execute("DELETE FROM providers WHERE id = %s", (provider_id,))

    def rotate_master_key(self, batch_size: int = 500) -> int:
        """Re-encrypt every stored key under the primary master key; returns rows rewritten."""
        rewritten = 0
        last_id = ""
        while True:
            with self._pool.connection() as conn, conn.transaction():
                rows = conn.execute(
                    """SELECT id, api_key_encrypted FROM providers
                    WHERE id > %s AND api_key_encrypted IS NOT NULL ORDER BY id LIMIT %s FOR UPDATE""",
                    (last_id, batch_size),
                ).fetchall()
                for provider_id, token in rows:
                    conn.execute(
                        "UPDATE providers SET api_key_encrypted = %s WHERE id = %s",
                        (self._vault.rotate(token), provider_id),
                    )
            if not rows:
                return rewritten
            rewritten += len(rows)
            last_id = rows[-1][0]

    # Project assignments ------------------------------------------------------------

    def assign(self, project: str, provider_id: str, *, make_default: bool) -> Assignment:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            if cur.execute("SELECT 1 FROM providers WHERE id = %s FOR SHARE", (provider_id,)).fetchone() is None:
                raise NotFound(f"providers/{provider_id} does not exist", reason=Reason.PROVIDER_NOT_FOUND)
            # Serialise assignments of one project so "exactly one default" holds under races.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (project,))
            has_default = cur.execute(
                "SELECT 1 FROM project_providers WHERE project = %s AND is_default AND provider_id <> %s",
                (project, provider_id),
            ).fetchone()
            is_default = make_default or not has_default
            if make_default:
                cur.execute(
                    "UPDATE project_providers SET is_default = false WHERE project = %s AND is_default", (project,)
                )
            cur.execute(
                """INSERT INTO project_providers (project, provider_id, is_default) VALUES (%s, %s, %s)
                ON CONFLICT (project, provider_id)
                DO UPDATE SET is_default = project_providers.is_default OR EXCLUDED.is_default""",
                (project, provider_id, is_default),
            )
        return next(a for a in self.project_providers(project) if a.provider.id == provider_id)

    def unassign(self, project: str, provider_id: str) -> None:
        with self._pool.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM project_providers WHERE project = %s AND provider_id = %s", (project, provider_id)
            ).rowcount
        if not deleted:
            raise NotFound(
                f"providers/{provider_id} is not assigned to projects/{project}", reason=Reason.ASSIGNMENT_NOT_FOUND
            )

    def project_providers(self, project: str) -> builtins.list[Assignment]:  # `list` is a method here
        columns = ", ".join(f"p.{c.strip()}" for c in _PROVIDER_COLUMNS.split(","))
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"""SELECT {columns}, a.is_default, a.assigned_at FROM project_providers a
                JOIN providers p ON p.id = a.provider_id WHERE a.project = %s
                ORDER BY a.is_default DESC, p.display_name""",
                (project,),
            ).fetchall()
        return [Assignment(project, _provider(r), r["is_default"], r["assigned_at"]) for r in rows]


class TokenRepository:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def create(
        self, *, display_name: str, is_admin: bool, projects: list[str], secret_sha256: str, prefix: str
    ) -> TokenRecord:
        token_id = uuid.uuid4().hex[:16]
        with self._pool.connection() as conn:
            row = _returned(
                conn.execute(
                    """INSERT INTO api_tokens (id, display_name, secret_sha256, token_prefix, is_admin, projects)
                    VALUES (%s, %s, %s, %s, %s, %s) RETURNING created_at""",
                    (token_id, display_name, secret_sha256, prefix, is_admin, projects),
                )
            )
        return TokenRecord(token_id, display_name, is_admin, projects, prefix, row[0])

    def find_by_hash(self, secret_sha256: str) -> TokenRecord | None:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT id, display_name, is_admin, projects, token_prefix, created_at"
                " FROM api_tokens WHERE secret_sha256 = %s",
                (secret_sha256,),
            ).fetchone()
        return None if row is None else TokenRecord(**row)

    def get(self, token_id: str) -> TokenRecord | None:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT id, display_name, is_admin, projects, token_prefix, created_at FROM api_tokens WHERE id = %s",
                (token_id,),
            ).fetchone()
        return None if row is None else TokenRecord(**row)

    def known_projects(self, limit: int) -> builtins.list[str]:  # `list` is a method here
        """Project ids with a provider assigned or named by a project token, in byte order
        (COLLATE "C": the order Python sorts them in, whatever the database's locale)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                """SELECT project COLLATE "C" AS project FROM project_providers
                UNION SELECT unnest(projects) COLLATE "C" FROM api_tokens
                ORDER BY project LIMIT %s""",
                (limit,),
            ).fetchall()
        return [r[0] for r in rows]

    def list(self, *, after_id: str | None, limit: int) -> list[TokenRecord]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                """SELECT id, display_name, is_admin, projects, token_prefix, created_at FROM api_tokens
                WHERE %s::text IS NULL OR id > %s ORDER BY id LIMIT %s""",
                (after_id, after_id, limit),
            ).fetchall()
        return [TokenRecord(**r) for r in rows]

    def delete(self, token_id: str) -> None:
        with self._pool.connection() as conn:
            if not conn.execute("DELETE FROM api_tokens WHERE id = %s", (token_id,)).rowcount:
                raise NotFound(f"tokens/{token_id} does not exist", reason=Reason.TOKEN_NOT_FOUND)

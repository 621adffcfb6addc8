"""The provider registry's use cases, on domain records: what the servicer calls after
turning protobuf into records."""

from __future__ import annotations

import copy

from synthtasks.v1 import provider_service_pb2 as pb

from services.provider_access import ProviderEndpoint
from services.provider_registry import provider_rules as rules
from services.provider_registry.audit import AuditEvent, AuditTrail
from services.provider_registry.endpoint_policy import endpoint_refusal
from services.provider_registry.live_check import CheckResult, check_connection
from services.provider_registry.records import Assignment, CallerIdentity, ProviderRecord, TokenRecord, Validation
from services.provider_registry.repository import ProviderRepository, TokenRepository
from services.provider_registry.tokens import display_prefix, new_secret, secret_sha256
from services.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument, Unauthenticated
from services.vocabulary import names
from services.vocabulary.quoting import quoted
from services.vocabulary.reasons import Reason

# Paths UpdateProvider accepts; `kind` is immutable (a different kind is a different provider).
UPDATABLE_PATHS = {
    "display_name",
    "endpoint",
    "deployment",
    "api_version",
    "model",
    "organization",
    "api_key",
    "limits",
    "limits.requests_per_minute",
    "limits.tokens_per_minute",
    "limits.max_concurrent_requests",
    "max_choices_per_request",
    "request_timeout",
    "allowed_models",
    "structured_output",
}
# Mask paths are the proto's field names; the record keeps some under another name.
_RECORD_ATTRIBUTE = {"request_timeout": "request_timeout_ms"}
# Projects suggested to an admin at most: one response, no paging (a picker shows no more).
MAX_KNOWN_PROJECTS = 1000
_STATE_NAMES = {value: name.removeprefix("VALIDATION_STATE_") for name, value in pb.ValidationState.items()}


class Registry:
    """Every change made here is recorded in the audit trail (audit.py) once it succeeded."""

    def __init__(
        self,
        providers: ProviderRepository,
        tokens: TokenRepository,
        audit: AuditTrail,
        *,
        validation_timeout: float,
        allow_private_endpoints: bool,
    ) -> None:
        self._providers = providers
        self._tokens = tokens
        self._audit = audit
        self._timeout = validation_timeout
        self._allow_private_endpoints = allow_private_endpoints

    # Providers ----------------------------------------------------------------------

    def create_provider(
        self, record: ProviderRecord, *, provider_id: str, validate_first: bool
    ) -> tuple[ProviderRecord, CheckResult | None]:
        if not record.max_choices_per_request:
            record.max_choices_per_request = rules.DEFAULT_MAX_CHOICES.get(record.kind, 1)
        rules.default_structured_output(record)
        rules.check_provider(record)
        self._check_endpoint_allowed(record)
        if provider_id:
            names.check_provider_id(provider_id, field="provider_id")
            record.id = provider_id
        else:
            record.id = self._free_id(rules.slug(record.display_name))
        check = None
        if validate_first:
            check = self.test_connection(record)
            if check.state != pb.VALIDATION_STATE_VALID:
                raise FailedPrecondition(
                    f"not saved: validation says {_STATE_NAMES[check.state]}: {check.message}",
                    reason=Reason.VALIDATION_FAILED,
                )
        created = self._providers.create(record)
        if check is not None:
            created = self._providers.record_validation(
                created.id, Validation(check.state, check.message, check.latency_ms)
            )
        kind = pb.ProviderKind.Name(created.kind).removeprefix("PROVIDER_KIND_")
        self._audit.record(
            "ProviderService/CreateProvider",
            created.name,
            f"created {kind} provider {created.display_name!r}" + (", validated first" if check else ""),
        )
        return created, check

    def _free_id(self, base: str) -> str:
        candidate, n = base, 1
        while self._providers.id_taken(candidate):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def get_provider(self, provider_id: str) -> ProviderRecord:
        return self._providers.get(provider_id)

    def list_providers(self, *, after_id: str | None, limit: int) -> list[ProviderRecord]:
        return self._providers.list(after_id=after_id, limit=limit)

    def update_provider(
        self, provider_id: str, changes: ProviderRecord, paths: list[str], etag: str, *, populated: list[str]
    ) -> ProviderRecord:
        """Apply the fields named by `paths`; AIP-134: without a mask, the updatable
        fields the request populates (`populated`)."""
        if not paths:
            paths = [path for path in populated if path in UPDATABLE_PATHS]
            if not paths:
                return self._providers.get(provider_id)
        for index, path in enumerate(paths):
            if path not in UPDATABLE_PATHS:
                raise InvalidArgument.field(
                    f"update_mask.paths[{index}]",
                    f"{quoted(path)} cannot be updated; updatable: {', '.join(sorted(UPDATABLE_PATHS))}",
                )

        def apply(current: ProviderRecord) -> tuple[bool, ProviderRecord]:
            updated = copy.deepcopy(current)
            for path in paths:
                if path.startswith("limits."):
                    setattr(updated.limits, path.split(".", 1)[1], getattr(changes.limits, path.split(".", 1)[1]))
                elif path == "limits":
                    updated.limits = copy.deepcopy(changes.limits)
                else:
                    attribute = _RECORD_ATTRIBUTE.get(path, path)
                    setattr(updated, attribute, getattr(changes, attribute))
            key_changed = "api_key" in paths
            rules.check_provider(updated, key_required=key_changed)
            self._check_endpoint_allowed(updated)
            return key_changed, updated

        updated = self._providers.update(provider_id, etag, apply)
        changed = ", ".join(sorted("api_key (rotated)" if path == "api_key" else path for path in paths))
        self._audit.record("ProviderService/UpdateProvider", updated.name, f"changed {changed}")
        return updated

    def delete_provider(self, provider_id: str, *, force: bool, etag: str) -> None:
        self._providers.delete(provider_id, force=force, etag=etag)
        self._audit.record(
            "ProviderService/DeleteProvider", f"providers/{provider_id}", "deleted" + (" with force" if force else "")
        )

    def validate_provider(self, provider_id: str) -> tuple[CheckResult, ProviderRecord]:
        check = self.test_connection(self._providers.get_with_key(provider_id))
        stored = self._providers.record_validation(
            provider_id, Validation(check.state, check.message, check.latency_ms)
        )
        self._audit.record("ProviderService/ValidateProvider", stored.name, f"validated: {_STATE_NAMES[check.state]}")
        return check, stored

    def test_connection(self, record: ProviderRecord) -> CheckResult:
        if not record.max_choices_per_request:
            record.max_choices_per_request = 1
        # Again before every call: a name may resolve elsewhere now, or the rule changed.
        refusal = endpoint_refusal(record.endpoint, allow_private=self._allow_private_endpoints)
        if refusal is not None:
            return CheckResult(pb.VALIDATION_STATE_ENDPOINT_UNREACHABLE, f"not called: the endpoint {refusal}", 0)
        return check_connection(ProviderEndpoint.of(record), timeout=self._timeout)

    def _check_endpoint_allowed(self, record: ProviderRecord) -> None:
        refusal = endpoint_refusal(record.endpoint, allow_private=self._allow_private_endpoints)
        if refusal is not None:
            raise InvalidArgument([FieldViolation("provider.endpoint", refusal)], reason=Reason.ENDPOINT_NOT_ALLOWED)

    def credential(self, provider_id: str) -> ProviderRecord:
        return self._providers.get_with_key(provider_id)

    def rotate_master_key(self) -> int:
        return self._providers.rotate_master_key()

    # Assignments --------------------------------------------------------------------

    def assign(self, project: str, provider_id: str, *, make_default: bool) -> Assignment:
        assignment = self._providers.assign(project, provider_id, make_default=make_default)
        self._audit.record(
            "ProviderService/AssignProvider",
            f"projects/{project}/providers/{provider_id}",
            "assigned as the default" if assignment.is_default else "assigned",
        )
        return assignment

    def unassign(self, project: str, provider_id: str) -> None:
        self._providers.unassign(project, provider_id)
        self._audit.record(
            "ProviderService/UnassignProvider", f"projects/{project}/providers/{provider_id}", "unassigned"
        )

    def project_providers(self, project: str) -> list[Assignment]:
        return self._providers.project_providers(project)

    # Tokens -------------------------------------------------------------------------

    def create_token(self, *, display_name: str, is_admin: bool, projects: list[str]) -> tuple[TokenRecord, str]:
        secret = new_secret()
        record = self._tokens.create(
            display_name=display_name,
            is_admin=is_admin,
            projects=projects,
            secret_sha256=secret_sha256(secret),
            prefix=display_prefix(secret),
        )
        scope = "admin" if is_admin else "project token for " + ", ".join(f"projects/{p}" for p in projects)
        self._audit.record("TokenService/CreateToken", f"tokens/{record.id}", f"created {scope} {display_name!r}")
        return record, secret

    def authenticate(self, token_sha256: str) -> TokenRecord | None:
        return self._tokens.find_by_hash(token_sha256)

    def list_tokens(self, *, after_id: str | None, limit: int) -> list[TokenRecord]:
        return self._tokens.list(after_id=after_id, limit=limit)

    def caller_identity(self, token_id: str) -> CallerIdentity:
        """The calling token (`token_id`, as the gateway authenticated it) and, for an
        admin, the projects to suggest. Revoked since the gateway's check (it caches
        answers briefly): UNAUTHENTICATED, as the gateway would say a moment later."""
        record = self._tokens.get(token_id)
        if record is None:
            raise Unauthenticated("unknown or revoked token", reason=Reason.TOKEN_UNKNOWN)
        # A project token learns only its own projects; other projects' names are not its business.
        known = self._tokens.known_projects(MAX_KNOWN_PROJECTS) if record.is_admin else []
        return CallerIdentity(record, known)

    def delete_token(self, token_id: str) -> None:
        self._tokens.delete(token_id)
        self._audit.record("TokenService/DeleteToken", f"tokens/{token_id}", "deleted")

    # Audit --------------------------------------------------------------------------

    def audit_events(self, *, before_seq: int | None, limit: int) -> list[AuditEvent]:
        return self._audit.list(before_seq=before_seq, limit=limit)

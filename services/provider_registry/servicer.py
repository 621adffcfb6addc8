"""Protobuf <-> domain records for the registry's gRPC services. No SQL, no rules
here: those live in registry.py, provider_rules.py and repository.py.

What members see (ListProjectProviders, callable by project tokens): the provider's
name, display name, kind, deployment, api version, model, allowed models, limits, and
the state and time of its last validation. Not shown to them: the key hint, the
organization id (an account identifier of the admin's provider account), the
validation message (the provider's own words, which can quote account details), and
anything of the endpoint beyond scheme, host, port and path. No response to anyone
carries credentials embedded in an endpoint URL."""

from __future__ import annotations

import re

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from synthtasks.internal.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    credential_service_pb2,
    credential_service_pb2_grpc,
)
from synthtasks.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    provider_service_pb2_grpc,
    token_service_pb2,
    token_service_pb2_grpc,
)
from synthtasks.v1 import provider_service_pb2 as pb

from services.provider_registry import provider_rules as rules
from services.provider_registry.live_check import CheckResult
from services.provider_registry.records import Assignment, Limits, ProviderRecord, TokenRecord
from services.provider_registry.registry import Registry
from services.runtime.call_metadata import CALLER_TOKEN_KEY, caller_token_var
from services.runtime.errors import FieldViolation, InvalidArgument, Unauthenticated
from services.vocabulary import names, page_tokens
from services.vocabulary.reasons import Reason


def _timestamp(value) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def record_from_proto(message: pb.Provider) -> ProviderRecord:
    return ProviderRecord(
        id="",
        display_name=message.display_name,
        kind=message.kind,
        endpoint=message.endpoint.strip(),
        deployment=message.deployment.strip(),
        api_version=message.api_version.strip(),
        model=message.model.strip(),
        organization=message.organization.strip(),
        api_key=message.api_key.strip(),
        limits=Limits(
            message.limits.requests_per_minute,
            message.limits.tokens_per_minute,
            message.limits.max_concurrent_requests,
        ),
        max_choices_per_request=message.max_choices_per_request,
        request_timeout_ms=message.request_timeout.ToMilliseconds() if message.HasField("request_timeout") else 0,
        allowed_models=[model.strip() for model in message.allowed_models],
        structured_output=message.structured_output,
    )


def _limits(record: ProviderRecord) -> pb.ProviderLimits:
    return pb.ProviderLimits(
        requests_per_minute=record.limits.requests_per_minute,
        tokens_per_minute=record.limits.tokens_per_minute,
        max_concurrent_requests=record.limits.max_concurrent_requests,
    )


def _connection(record: ProviderRecord) -> dict:
    """The fields a Provider and a worker's ProviderCredential have in common."""
    return {
        "name": record.name,
        "kind": record.kind,
        "endpoint": record.endpoint,
        "deployment": record.deployment,
        "api_version": record.api_version,
        "model": record.model,
        "organization": record.organization,
        "limits": _limits(record),
        "max_choices_per_request": record.max_choices_per_request,
        "structured_output": record.structured_output,
        "etag": record.etag,
    }


def provider_to_proto(record: ProviderRecord, *, for_members: bool = False) -> pb.Provider:
    """The admin view, or with `for_members` the member view (module docstring)."""
    message = pb.Provider(
        **_connection(record),
        display_name=record.display_name,
        key_hint="" if for_members else record.key_hint,
        allowed_models=record.allowed_models,
        create_time=_timestamp(record.created_at),
        update_time=_timestamp(record.updated_at),
    )
    if for_members:
        message.endpoint = rules.endpoint_for_members(record.endpoint)
        message.organization = ""
    else:
        message.endpoint = rules.endpoint_without_userinfo(record.endpoint)
    if record.request_timeout_ms:
        message.request_timeout.FromMilliseconds(record.request_timeout_ms)
    validation = record.validation
    if validation.validated_at is not None:
        # The record keeps the enum's number; the constructor takes its label.
        message.last_validation.CopyFrom(
            pb.ValidationResult(
                state=pb.ValidationState.Name(validation.state),
                message="" if for_members else validation.message,
            )
        )
        message.last_validation.latency.FromMilliseconds(validation.latency_ms)
        message.last_validation.validate_time.FromDatetime(validation.validated_at)
    return message


def _check_result(check: CheckResult) -> pb.ValidationResult:
    result = pb.ValidationResult(state=check.state, message=check.message)
    result.latency.FromMilliseconds(check.latency_ms)
    result.validate_time.GetCurrentTime()
    return result


def _assignment(assignment: Assignment) -> pb.ProjectProvider:
    return pb.ProjectProvider(
        project=names.project_name(assignment.project),
        # Members may list their projects' providers: they get the member view.
        provider=provider_to_proto(assignment.provider, for_members=True),
        default=assignment.is_default,
        assign_time=_timestamp(assignment.assigned_at),
    )


def _role(record: TokenRecord) -> token_service_pb2.TokenRole:
    return token_service_pb2.TOKEN_ROLE_ADMIN if record.is_admin else token_service_pb2.TOKEN_ROLE_PROJECT


def _token(record: TokenRecord) -> token_service_pb2.ApiToken:
    return token_service_pb2.ApiToken(
        name=names.token_name(record.id),
        display_name=record.display_name,
        role=_role(record),
        projects=[names.project_name(p) for p in record.projects],
        token_prefix=record.token_prefix,
        create_time=_timestamp(record.created_at),
    )


def _populated_paths(message: pb.Provider) -> list[str]:
    """The mask paths of the fields `message` sets (AIP-134's implied mask); a set
    `limits` counts by its set fields, so an omitted limit is not zeroed."""
    paths: list[str] = []
    for field, value in message.ListFields():
        if field.name == "limits":
            paths.extend(f"limits.{inner.name}" for inner, _ in value.ListFields())
        else:
            paths.append(field.name)
    return paths


def _page(request, records: list, key: str) -> tuple[list, str]:
    """Split one extra row off to know whether another page exists."""
    size = page_tokens.page_size(request.page_size)
    if len(records) > size:
        return records[:size], page_tokens.encode({key: records[size - 1].id})
    return records, ""


class ProviderServicer(provider_service_pb2_grpc.ProviderServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def CreateProvider(
        self, request: pb.CreateProviderRequest, context: grpc.ServicerContext
    ) -> pb.CreateProviderResponse:
        created, check = self._registry.create_provider(
            record_from_proto(request.provider),
            provider_id=request.provider_id,
            validate_first=request.validate_first,
        )
        response = pb.CreateProviderResponse(provider=provider_to_proto(created))
        if check is not None:
            response.validation.CopyFrom(_check_result(check))
        return response

    def GetProvider(self, request: pb.GetProviderRequest, context: grpc.ServicerContext) -> pb.GetProviderResponse:
        provider_id = names.parse_provider(request.name, field="name")
        return pb.GetProviderResponse(provider=provider_to_proto(self._registry.get_provider(provider_id)))

    def ListProviders(
        self, request: pb.ListProvidersRequest, context: grpc.ServicerContext
    ) -> pb.ListProvidersResponse:
        size = page_tokens.page_size(request.page_size)
        position = page_tokens.decode(request.page_token, fields={"after": str})
        records = self._registry.list_providers(after_id=position["after"] if position else None, limit=size + 1)
        shown, token = _page(request, records, "after")
        return pb.ListProvidersResponse(providers=[provider_to_proto(r) for r in shown], next_page_token=token)

    def UpdateProvider(
        self, request: pb.UpdateProviderRequest, context: grpc.ServicerContext
    ) -> pb.UpdateProviderResponse:
        provider_id = names.parse_provider(request.provider.name, field="provider.name")
        updated = self._registry.update_provider(
            provider_id,
            record_from_proto(request.provider),
            list(request.update_mask.paths),
            request.provider.etag,
            populated=_populated_paths(request.provider),
        )
        return pb.UpdateProviderResponse(provider=provider_to_proto(updated))

    def DeleteProvider(
        self, request: pb.DeleteProviderRequest, context: grpc.ServicerContext
    ) -> pb.DeleteProviderResponse:
        self._registry.delete_provider(
            names.parse_provider(request.name, field="name"), force=request.force, etag=request.etag
        )
        return pb.DeleteProviderResponse()

    def ValidateProvider(
        self, request: pb.ValidateProviderRequest, context: grpc.ServicerContext
    ) -> pb.ValidateProviderResponse:
        check, stored = self._registry.validate_provider(names.parse_provider(request.name, field="name"))
        return pb.ValidateProviderResponse(result=_check_result(check), provider=provider_to_proto(stored))

    def TestProviderConnection(
        self, request: pb.TestProviderConnectionRequest, context: grpc.ServicerContext
    ) -> pb.TestProviderConnectionResponse:
        record = record_from_proto(request.provider)
        record.max_choices_per_request = record.max_choices_per_request or 1
        rules.default_structured_output(record)
        if not record.display_name:
            record.display_name = "unsaved"  # a form may test before naming the provider
        rules.check_provider(record)
        return pb.TestProviderConnectionResponse(result=_check_result(self._registry.test_connection(record)))

    def AssignProvider(
        self, request: pb.AssignProviderRequest, context: grpc.ServicerContext
    ) -> pb.AssignProviderResponse:
        project, provider_id = self._project_and_provider(request)
        assignment = self._registry.assign(project, provider_id, make_default=request.default)
        return pb.AssignProviderResponse(project_provider=_assignment(assignment))

    def UnassignProvider(
        self, request: pb.UnassignProviderRequest, context: grpc.ServicerContext
    ) -> pb.UnassignProviderResponse:
        project, provider_id = self._project_and_provider(request)
        self._registry.unassign(project, provider_id)
        return pb.UnassignProviderResponse()

    def ListProjectProviders(
        self, request: pb.ListProjectProvidersRequest, context: grpc.ServicerContext
    ) -> pb.ListProjectProvidersResponse:
        project = names.parse_project(request.project, field="project")
        return pb.ListProjectProvidersResponse(
            project_providers=[_assignment(a) for a in self._registry.project_providers(project)]
        )

    @staticmethod
    def _project_and_provider(request) -> tuple[str, str]:
        violations: list[FieldViolation] = []
        project = provider_id = ""
        for parse, value, field in (
            (names.parse_project, request.project, "project"),
            (names.parse_provider, request.provider, "provider"),
        ):
            try:
                parsed = parse(value, field=field)
            except InvalidArgument as error:
                violations.extend(error.violations)
                continue
            if field == "project":
                project = parsed
            else:
                provider_id = parsed
        if violations:
            raise InvalidArgument(violations)
        return project, provider_id


class TokenServicer(token_service_pb2_grpc.TokenServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def CreateToken(
        self, request: token_service_pb2.CreateTokenRequest, context: grpc.ServicerContext
    ) -> token_service_pb2.CreateTokenResponse:
        token = request.token
        if token.role not in (token_service_pb2.TOKEN_ROLE_ADMIN, token_service_pb2.TOKEN_ROLE_PROJECT):
            raise InvalidArgument.field("token.role", "must be TOKEN_ROLE_ADMIN or TOKEN_ROLE_PROJECT")
        is_admin = token.role == token_service_pb2.TOKEN_ROLE_ADMIN
        if is_admin and token.projects:
            raise InvalidArgument.field("token.projects", "an admin token acts in every project; list no projects")
        if not is_admin and not token.projects:
            raise InvalidArgument.field("token.projects", "a project token needs at least one project")
        projects = [names.parse_project(p, field=f"token.projects[{i}]") for i, p in enumerate(token.projects)]
        if len(token.display_name) > 100:
            raise InvalidArgument.field("token.display_name", "must be at most 100 characters")
        if rules.has_control_characters(token.display_name):
            raise InvalidArgument.field("token.display_name", "must not contain control characters")
        record, secret = self._registry.create_token(
            display_name=token.display_name.strip(), is_admin=is_admin, projects=sorted(set(projects))
        )
        return token_service_pb2.CreateTokenResponse(token=_token(record), secret=secret)

    def ListTokens(
        self, request: token_service_pb2.ListTokensRequest, context: grpc.ServicerContext
    ) -> token_service_pb2.ListTokensResponse:
        size = page_tokens.page_size(request.page_size)
        position = page_tokens.decode(request.page_token, fields={"after": str})
        records = self._registry.list_tokens(after_id=position["after"] if position else None, limit=size + 1)
        shown, next_token = _page(request, records, "after")
        return token_service_pb2.ListTokensResponse(tokens=[_token(r) for r in shown], next_page_token=next_token)

    def DeleteToken(
        self, request: token_service_pb2.DeleteTokenRequest, context: grpc.ServicerContext
    ) -> token_service_pb2.DeleteTokenResponse:
        self._registry.delete_token(names.parse_token(request.name, field="name"))
        return token_service_pb2.DeleteTokenResponse()

    def GetCallerIdentity(
        self, request: token_service_pb2.GetCallerIdentityRequest, context: grpc.ServicerContext
    ) -> token_service_pb2.GetCallerIdentityResponse:
        # The caller is the token the gateway authenticated and named in the call's
        # metadata (trusted only behind the internal credential); a call made without
        # one, by a service for itself, has no public caller to describe.
        caller = caller_token_var.get()
        if not caller:
            raise Unauthenticated("no calling token: call through the gateway", reason=Reason.TOKEN_MISSING)
        identity = self._registry.caller_identity(names.parse_token(caller, field=CALLER_TOKEN_KEY))
        token = identity.token
        return token_service_pb2.GetCallerIdentityResponse(
            token=names.token_name(token.id),
            display_name=token.display_name,
            role=_role(token),
            projects=[] if token.is_admin else sorted(names.project_name(p) for p in token.projects),
            all_projects=token.is_admin,
            known_projects=[names.project_name(p) for p in identity.known_projects],
        )


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def ListAuditEvents(
        self, request: audit_service_pb2.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> audit_service_pb2.ListAuditEventsResponse:
        size = page_tokens.page_size(request.page_size)
        position = page_tokens.decode(request.page_token, fields={"before": int})
        before = position["before"] if position else None
        if before is not None and before < 1:
            raise InvalidArgument.field("page_token", "is not a page token returned by this API")
        events = self._registry.audit_events(before_seq=before, limit=size + 1)
        shown = events[:size]
        next_token = page_tokens.encode({"before": shown[-1].seq}) if len(events) > size else ""
        return audit_service_pb2.ListAuditEventsResponse(
            audit_events=[
                audit_service_pb2.AuditEvent(
                    name=f"auditEvents/{event.seq}",
                    actor=event.actor,
                    method=event.method,
                    resource=event.resource,
                    summary=event.summary,
                    request_id=event.request_id,
                    create_time=_timestamp(event.create_time),
                )
                for event in shown
            ],
            next_page_token=next_token,
        )


class CredentialServicer(credential_service_pb2_grpc.CredentialServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def GetProviderCredential(
        self, request, context: grpc.ServicerContext
    ) -> credential_service_pb2.GetProviderCredentialResponse:
        record = self._registry.credential(names.parse_provider(request.name, field="name"))
        credential = credential_service_pb2.ProviderCredential(**_connection(record), api_key=record.api_key)
        if record.request_timeout_ms:
            credential.request_timeout.FromMilliseconds(record.request_timeout_ms)
        return credential_service_pb2.GetProviderCredentialResponse(credential=credential)


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def AuthenticateToken(self, request, context: grpc.ServicerContext) -> auth_service_pb2.AuthenticateTokenResponse:
        if not re.fullmatch(r"[0-9a-f]{64}", request.token_sha256):
            raise InvalidArgument.field("token_sha256", "must be a hex SHA-256 digest")
        record = self._registry.authenticate(request.token_sha256)
        if record is None:
            return auth_service_pb2.AuthenticateTokenResponse(authenticated=False)
        return auth_service_pb2.AuthenticateTokenResponse(
            authenticated=True, admin=record.is_admin, projects=record.projects, token=names.token_name(record.id)
        )

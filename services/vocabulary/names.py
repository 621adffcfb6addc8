"""Resource names of the public API: patterns, parsers (with the request field to
blame) and formatting.

    providers/{provider}                       provider id  [a-z][a-z0-9-]{0,62}
    projects/{project}                         project id   [a-z0-9][a-z0-9_-]{0,62}
    projects/{project}/generationJobs/{job}    ids are server-made uuid hex (32)
    projects/{project}/stagedTexts/{text}
    projects/{project}/tasks/{task}
    projects/{project}/quota                   the project's quotas
    tokens/{token}                             16 hex digits

Every pattern is applied with fullmatch: `^…$` with `match` lets a final newline
through (`providers/lookalike\\n`). A malformed name is INVALID_ARGUMENT naming the
field and the expected form, never repeating the value; a well-formed name that
matches nothing is the repository's NOT_FOUND."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from services.runtime.errors import InvalidArgument

PROJECT_ID = r"[a-z0-9][a-z0-9_-]{0,62}"
PROVIDER_ID = r"[a-z][a-z0-9-]{0,62}"
RESOURCE_ID = r"[0-9a-f]{32}"
TOKEN_ID = r"[0-9a-f]{16}"

JOBS = "generationJobs"
STAGED_TEXTS = "stagedTexts"
TASKS = "tasks"
_COLLECTIONS = (JOBS, STAGED_TEXTS, TASKS)

_PROJECT_ID = re.compile(PROJECT_ID)
_PROVIDER_ID = re.compile(PROVIDER_ID)
_PROJECT_NAME = re.compile(rf"projects/(?P<project>{PROJECT_ID})")
_PROVIDER_NAME = re.compile(rf"providers/(?P<provider>{PROVIDER_ID})")
_TOKEN_NAME = re.compile(rf"tokens/(?P<token>{TOKEN_ID})")
_QUOTA_NAME = re.compile(rf"projects/(?P<project>{PROJECT_ID})/quota")
_CHILD_NAMES = {
    collection: re.compile(rf"projects/(?P<project>{PROJECT_ID})/{collection}/(?P<id>{RESOURCE_ID})")
    for collection in _COLLECTIONS
}
_CHILD_SHAPES = {
    JOBS: "projects/{project}/generationJobs/{job}",
    STAGED_TEXTS: "projects/{project}/stagedTexts/{text}",
    TASKS: "projects/{project}/tasks/{task}",
}


@dataclass(frozen=True)
class ResourceName:
    project: str
    id: str


def new_id() -> str:
    """A fresh id for a job, staged text or task (matches RESOURCE_ID)."""
    return uuid.uuid4().hex


def is_project_id(value: str) -> bool:
    return _PROJECT_ID.fullmatch(value) is not None


def is_provider_name(value: str) -> bool:
    return _PROVIDER_NAME.fullmatch(value) is not None


def check_provider_id(value: str, *, field: str) -> str:
    if _PROVIDER_ID.fullmatch(value) is None:
        raise InvalidArgument.field(field, f"must match {PROVIDER_ID}")
    return value


def parse_project(name: str, *, field: str) -> str:
    """The project id of `projects/{project}`."""
    return _fullmatch(_PROJECT_NAME, name, field, f"projects/{{project}} ({PROJECT_ID})")["project"]


def parse_project_quota(name: str, *, field: str) -> str:
    """The project id of `projects/{project}/quota`."""
    return _fullmatch(_QUOTA_NAME, name, field, "projects/{project}/quota")["project"]


def parse_provider(name: str, *, field: str) -> str:
    """The provider id of `providers/{provider}`."""
    return _fullmatch(_PROVIDER_NAME, name, field, f"providers/{{provider}} ({PROVIDER_ID})")["provider"]


def parse_token(name: str, *, field: str) -> str:
    """The token id of `tokens/{token}`."""
    return _fullmatch(_TOKEN_NAME, name, field, "tokens/{token} (16 hex digits)")["token"]


def parse_child(name: str, collection: str, *, field: str, project: str | None = None) -> ResourceName:
    """A job, staged text or task name; when `project` is given (the request's parent),
    the name must be in it."""
    match = _fullmatch(_CHILD_NAMES[collection], name, field, _CHILD_SHAPES[collection])
    if project is not None and match["project"] != project:
        raise InvalidArgument.field(field, f"must be in projects/{project}, the request's parent")
    return ResourceName(match["project"], match["id"])


def parse_job(name: str, *, field: str, project: str | None = None) -> ResourceName:
    return parse_child(name, JOBS, field=field, project=project)


def parse_job_or_project(name: str, *, field: str) -> tuple[str, str | None]:
    """(project, job id) of `projects/{project}/generationJobs/{job}`, or (project, None)
    of `projects/{project}`: a scope that is one job or every job of a project."""
    if f"/{JOBS}/" in name:
        ref = parse_job(name, field=field)
        return ref.project, ref.id
    return parse_project(name, field=field), None


def parse_staged_text(name: str, *, field: str, project: str | None = None) -> ResourceName:
    return parse_child(name, STAGED_TEXTS, field=field, project=project)


def parse_task(name: str, *, field: str, project: str | None = None) -> ResourceName:
    return parse_child(name, TASKS, field=field, project=project)


def project_name(project: str) -> str:
    return f"projects/{project}"


def provider_name(provider_id: str) -> str:
    return f"providers/{provider_id}"


def token_name(token_id: str) -> str:
    return f"tokens/{token_id}"


def job_name(project: str, job_id: str) -> str:
    return f"projects/{project}/{JOBS}/{job_id}"


def staged_text_name(project: str, text_id: str) -> str:
    return f"projects/{project}/{STAGED_TEXTS}/{text_id}"


def task_name(project: str, task_id: str) -> str:
    return f"projects/{project}/{TASKS}/{task_id}"


def _fullmatch(pattern: re.Pattern[str], name: str, field: str, shape: str) -> re.Match[str]:
    match = pattern.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(field, "is required" if not name else f"must have the form {shape}")
    return match

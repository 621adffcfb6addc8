"""Resource names of the task store: parsing (with the request field to blame) and
formatting.

    projects/{project}                         project id  [a-z0-9][a-z0-9_-]{0,62}
    projects/{project}/generationJobs/{job}    ids are server-generated uuid hex
    projects/{project}/stagedTexts/{text}
    projects/{project}/tasks/{task}
    projects/{project}/quota                   the project's quotas (quotas.py)

A malformed name is INVALID_ARGUMENT; a well-formed name that matches nothing is the
repository's NOT_FOUND.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from services.runtime.errors import InvalidArgument

_PROJECT = r"(?P<project>[a-z0-9][a-z0-9_-]{0,62})"
_ID = r"(?P<id>[0-9a-f]{32})"

_PROJECT_NAME = re.compile(rf"projects/{_PROJECT}")
_JOB_NAME = re.compile(rf"projects/{_PROJECT}/generationJobs/{_ID}")
_STAGED_TEXT_NAME = re.compile(rf"projects/{_PROJECT}/stagedTexts/{_ID}")
_TASK_NAME = re.compile(rf"projects/{_PROJECT}/tasks/{_ID}")
_QUOTA_NAME = re.compile(rf"projects/{_PROJECT}/quota")


@dataclass(frozen=True)
class ResourceName:
    project: str
    id: str


def new_id() -> str:
    return uuid.uuid4().hex


def parse_project(name: str, *, field: str) -> str:
    """The project id of `projects/{project}`."""
    match = _PROJECT_NAME.fullmatch(name)
    if not match:
        raise InvalidArgument.field(field, _describe(name, "projects/{project}"))
    return match["project"]


def parse_project_quota(name: str, *, field: str) -> str:
    """The project id of `projects/{project}/quota`."""
    match = _QUOTA_NAME.fullmatch(name)
    if not match:
        raise InvalidArgument.field(field, _describe(name, "projects/{project}/quota"))
    return match["project"]


def parse_job(name: str, *, field: str, project: str | None = None) -> ResourceName:
    return _parse(_JOB_NAME, name, field, project, "projects/{project}/generationJobs/{job}")


def parse_staged_text(name: str, *, field: str, project: str | None = None) -> ResourceName:
    return _parse(_STAGED_TEXT_NAME, name, field, project, "projects/{project}/stagedTexts/{text}")


def parse_task(name: str, *, field: str, project: str | None = None) -> ResourceName:
    return _parse(_TASK_NAME, name, field, project, "projects/{project}/tasks/{task}")


def project_name(project: str) -> str:
    return f"projects/{project}"


def job_name(project: str, job_id: str) -> str:
    return f"projects/{project}/generationJobs/{job_id}"


def staged_text_name(project: str, text_id: str) -> str:
    return f"projects/{project}/stagedTexts/{text_id}"


def task_name(project: str, task_id: str) -> str:
    return f"projects/{project}/tasks/{task_id}"


def _parse(pattern: re.Pattern[str], name: str, field: str, project: str | None, shape: str) -> ResourceName:
    """Parse `name`; when `project` is given (the request's parent), the name must be in it."""
    match = pattern.fullmatch(name)
    if not match:
        raise InvalidArgument.field(field, _describe(name, shape))
    if project is not None and match["project"] != project:
        raise InvalidArgument.field(field, f"must be in projects/{project}, the request's parent")
    return ResourceName(match["project"], match["id"])


def _describe(name: str, shape: str) -> str:
    return "is required" if not name else f"must have the form {shape}"

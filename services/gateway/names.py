"""Parsing resource names in requests, so the caller's project scope can be checked
before anything is forwarded (PERMISSION_DENIED comes before NOT_FOUND)."""

from __future__ import annotations

import re

from services.runtime.errors import InvalidArgument

PROJECT_ID = r"[a-z0-9][a-z0-9_-]{0,62}"
_PROJECT = re.compile(rf"^projects/({PROJECT_ID})$")
_CHILD = re.compile(rf"^projects/({PROJECT_ID})/(generationJobs|stagedTexts|tasks)/([A-Za-z0-9_-]{{1,64}})$")


def project_of_parent(parent: str, field: str = "parent") -> str:
    match = _PROJECT.match(parent)
    if not match:
        raise InvalidArgument.field(field, "must be a project name like projects/my-project ([a-z0-9][a-z0-9_-]{0,62})")
    return match.group(1)


def project_of_child(name: str, collection: str, field: str = "name") -> str:
    match = _CHILD.match(name)
    if not match or match.group(2) != collection:
        raise InvalidArgument.field(field, f"must be a name like projects/my-project/{collection}/ID")
    return match.group(1)


_QUOTA = re.compile(rf"^projects/({PROJECT_ID})/quota$")


def project_of_quota(name: str, field: str = "name") -> str:
    match = _QUOTA.match(name)
    if not match:
        raise InvalidArgument.field(field, "must be a name like projects/my-project/quota")
    return match.group(1)

"""Resource names from what people type: `demo` or `projects/demo`, `openai-prod` or
`providers/openai-prod`, a job id with `--project` or its full name."""

from __future__ import annotations

from services.vocabulary.names import is_project_id
from synthtasks_cli.errors import UsageError


def project(value: str) -> str:
    """`projects/{id}` for `id` or `projects/id`."""
    project_id = value.removeprefix("projects/")
    if not is_project_id(project_id):
        raise UsageError(f"{value!r} is not a project id: use lowercase letters, digits, '_' and '-' (at most 63)")
    return f"projects/{project_id}"


def project_id(value: str) -> str:
    return project(value).removeprefix("projects/")


def provider(value: str) -> str:
    return value if value.startswith("providers/") else f"providers/{value}"


def token(value: str) -> str:
    return value if value.startswith("tokens/") else f"tokens/{value}"


def child(value: str, collection: str, project_value: str | None) -> str:
    """`projects/{p}/{collection}/{id}` from a full name, or from an id plus `--project`."""
    if value.startswith("projects/"):
        parts = value.split("/")
        if len(parts) != 4 or parts[2] != collection or not parts[3]:
            raise UsageError(f"{value!r} is not a name like projects/PROJECT/{collection}/ID")
        return value
    if "/" in value:
        raise UsageError(f"{value!r} is not a name like projects/PROJECT/{collection}/ID")
    if not project_value:
        raise UsageError(f"give the full name projects/PROJECT/{collection}/{value}, or --project PROJECT")
    return f"{project(project_value)}/{collection}/{value}"


def parent_of(name: str) -> str:
    """`projects/{p}` of a child name."""
    return "/".join(name.split("/")[:2])


def short(name: str) -> str:
    """The last segment, for narrow table columns."""
    return name.rsplit("/", 1)[-1]

"""Every ErrorInfo reason a service raises is a member of the one Reason enum."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import services
from services.runtime.errors import InvalidArgument, NotFound, ServiceError
from services.vocabulary.reasons import Reason

SERVICES = Path(services.__file__).parent


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in sorted(SERVICES.rglob("*.py"))]


def _error_class_names(trees) -> set[str]:
    """Names of ServiceError and every class deriving from it, found in the source."""
    names = {"ServiceError"}
    classes = [node for _, tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    while True:
        more = {c.name for c in classes if any(ast.unparse(b).split(".")[-1] in names for b in c.bases)} - names
        if not more:
            return names
        names |= more


def _error_classes() -> list[type[ServiceError]]:
    found: list[type[ServiceError]] = []
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _reason_of(node: ast.expr) -> str:
    """The reason an expression names: `Reason.X` or a string literal."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Reason":
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise AssertionError(f"a reason must be Reason.X or a literal, not {ast.unparse(node)}")


def _raised_reasons() -> list[tuple[str, str]]:
    """(where, reason) for every `reason=` given to an error class and every `default_reason`."""
    trees = _trees()
    error_names = _error_class_names(trees)
    found: list[tuple[str, str]] = []
    for path, tree in trees:
        for node in ast.walk(tree):
            where = f"{path.relative_to(SERVICES.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in error_names or (
                    name == "field" and ast.unparse(node.func).endswith("InvalidArgument.field")
                ):
                    found.extend((where, _reason_of(k.value)) for k in node.keywords if k.arg == "reason")
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "default_reason" for t in node.targets
            ):
                found.append((where, _reason_of(node.value)))
    return found


def test_every_reason_raised_in_services_is_listed_in_the_enum():
    raised = _raised_reasons()

    unlisted = [(where, reason) for where, reason in raised if reason not in Reason.__members__]
    assert not unlisted, f"reasons missing from services/vocabulary/reasons.py: {unlisted}"
    # The control: the scan does see the raise sites (each error class's default and the specific ones).
    assert len(raised) > 30
    assert {"PROVIDER_NOT_FOUND", "REQUEST_ID_REUSED", "DATABASE_UNAVAILABLE", "ETAG_MISMATCH"} <= {
        r for _, r in raised
    }


def test_every_error_class_defaults_to_a_listed_reason():
    import services.task_store.errors  # noqa: F401 - its error classes join the tree

    for cls in _error_classes():
        assert isinstance(cls.default_reason, Reason), cls


def test_an_unlisted_reason_cannot_be_raised():
    with pytest.raises(ValueError):
        NotFound("gone", reason="SOMETHING_NEW")  # type: ignore[arg-type]
    assert NotFound("gone", reason=Reason.PROVIDER_NOT_FOUND).reason is Reason.PROVIDER_NOT_FOUND
    assert InvalidArgument.field("name", "bad").reason is Reason.INVALID_ARGUMENT


def test_reasons_are_upper_snake_case_and_equal_to_their_names():
    for name, member in Reason.__members__.items():
        assert member.value == name and name.isupper() and " " not in name

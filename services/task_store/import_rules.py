"""What an import takes and what it freezes, without SQL: the state a staged text is
imported from, the read-only rule for imported texts, and the synthetic tag every task
from a generated text carries."""

from __future__ import annotations

from collections.abc import Collection

from services.runtime.errors import FailedPrecondition
from services.task_store.records import TextState
from services.vocabulary.reasons import Reason

# The state an import takes texts from. Its filter is built from this constant.
IMPORTABLE = TextState.STAGED
# Added on import to every task's tags (once), and never removable from such a task:
# whoever reads the tasks can always tell generated examples from written ones.
SYNTHETIC_TAG = "synthetic"


def is_importable(state: TextState, *, what: str) -> bool:
    """Whether importing a named text creates its task: True when it is STAGED, False
    when it is already IMPORTED (counted, not imported again). A DISCARDED text is
    refused: a reviewer set it aside, so importing it takes an explicit restore."""
    if state is TextState.DISCARDED:
        raise FailedPrecondition(f"{what} is discarded; restore it first", reason=Reason.STAGED_TEXT_DISCARDED)
    return state is IMPORTABLE


def check_editable(state: TextState, *, what: str) -> None:
    """Refuse changing an IMPORTED text: from then on its task is the copy that changes."""
    if state is TextState.IMPORTED:
        raise FailedPrecondition(f"{what} is imported and read-only", reason=Reason.STAGED_TEXT_IMPORTED)


def check_task_tags(tags: Collection[str], *, from_generated_text: bool, what: str) -> None:
    """Refuse new tags for a task imported from a generated text unless they keep
    SYNTHETIC_TAG."""
    if from_generated_text and SYNTHETIC_TAG not in tags:
        raise FailedPrecondition(
            f"task.tags: {what} came from a generated text and must keep the tag {SYNTHETIC_TAG!r}",
            reason=Reason.SYNTHETIC_TAG_REQUIRED,
        )

"""Import rules on their own, without a database: which staged texts an import takes,
what it leaves read-only, and the synthetic tag its tasks keep."""

from __future__ import annotations

import pytest

from services.runtime.errors import FailedPrecondition
from services.task_store import import_rules, validation
from services.task_store.records import TextState
from services.vocabulary.reasons import Reason

NAME = "projects/demo/stagedTexts/0123456789abcdef0123456789abcdef"


def test_import_takes_staged_texts_and_counts_imported_ones():
    assert import_rules.IMPORTABLE is TextState.STAGED
    assert import_rules.is_importable(TextState.STAGED, what=NAME) is True
    assert import_rules.is_importable(TextState.IMPORTED, what=NAME) is False


def test_a_discarded_text_is_refused_until_restored():
    with pytest.raises(FailedPrecondition) as refused:
        import_rules.is_importable(TextState.DISCARDED, what=f"names[1]: {NAME}")
    assert refused.value.reason is Reason.STAGED_TEXT_DISCARDED
    assert str(refused.value) == f"names[1]: {NAME} is discarded; restore it first"


@pytest.mark.parametrize("state", [TextState.STAGED, TextState.DISCARDED])
def test_texts_not_imported_can_change(state):
    import_rules.check_editable(state, what=NAME)


def test_an_imported_text_is_read_only():
    with pytest.raises(FailedPrecondition) as refused:
        import_rules.check_editable(TextState.IMPORTED, what=NAME)
    assert refused.value.reason is Reason.STAGED_TEXT_IMPORTED
    assert str(refused.value) == f"{NAME} is imported and read-only"


def test_the_synthetic_tag_is_a_valid_tag():
    assert validation.tag(import_rules.SYNTHETIC_TAG, field="tag") == import_rules.SYNTHETIC_TAG


def test_a_task_from_a_generated_text_keeps_the_synthetic_tag():
    import_rules.check_task_tags(("new", import_rules.SYNTHETIC_TAG), from_generated_text=True, what=NAME)
    with pytest.raises(FailedPrecondition) as refused:
        import_rules.check_task_tags(("new", "synthetic-ish"), from_generated_text=True, what=NAME)
    assert refused.value.reason is Reason.SYNTHETIC_TAG_REQUIRED
    assert repr(import_rules.SYNTHETIC_TAG) in str(refused.value)


def test_a_task_from_no_generated_text_may_drop_the_tag():
    # The very tags refused above pass when the task has no generated source.
    import_rules.check_task_tags(("new", "synthetic-ish"), from_generated_text=False, what=NAME)

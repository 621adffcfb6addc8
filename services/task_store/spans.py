"""Rules for entity spans over a text, pure functions without database or protobuf.

Offsets are Python string indices (code points) over the stored text, end exclusive:
`text[span.start:span.end] == span.text` holds for every stored span. A span that
breaks a rule is refused with InvalidArgument naming its field (`results[0].text.spans[2].end`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from services.runtime.errors import InvalidArgument
from services.task_store.records import Span
from services.vocabulary import labels
from services.vocabulary.quoting import quoted

# More spans than this on one text is not an annotation but a malfunction.
MAX_SPANS = 1000


def checked(
    text: str, spans: Sequence[Span], *, field: str, allowed_labels: Collection[str] | None = None
) -> tuple[Span, ...]:
    """`spans` if every one lies inside `text`, covers exactly its `text` and carries an
    allowed label (any well-formed label when `allowed_labels` is None). Overlapping
    spans are allowed here; formats that forbid them refuse them at export."""
    if len(spans) > MAX_SPANS:
        raise InvalidArgument.field(field, f"must hold at most {MAX_SPANS} spans")
    for index, span in enumerate(spans):
        where = f"{field}[{index}]"
        if not 0 <= span.start < len(text):
            raise InvalidArgument.field(f"{where}.start", f"must be between 0 and {len(text) - 1} (inside the text)")
        if not span.start < span.end <= len(text):
            raise InvalidArgument.field(
                f"{where}.end", f"must be after start ({span.start}) and at most {len(text)} (the text's length)"
            )
        if not labels.is_label_name(span.label):
            raise InvalidArgument.field(f"{where}.label", f"must match {labels.LABEL_NAME}")
        if allowed_labels is not None and span.label not in allowed_labels:
            raise InvalidArgument.field(f"{where}.label", f"{quoted(span.label)} is not one of the job's labels")
        if text[span.start : span.end] != span.text:
            raise InvalidArgument.field(
                f"{where}.text",
                f"must equal the text at [{span.start}, {span.end}): {quoted(text[span.start : span.end])}",
            )
    return tuple(spans)

"""Rules for entity spans over a text, pure functions without database or protobuf.

Offsets are Python string indices (code points) over the stored text, end exclusive:
`text[span.start:span.end] == span.text` holds for every stored span. A span that
breaks a rule is refused with InvalidArgument naming its field (`results[0].text.spans[2].end`)."""

from __future__ import annotations

import difflib
import itertools
import re
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


def relocated(old_text: str, new_text: str, spans: Sequence[Span]) -> tuple[Span, ...]:
    """The spans of `old_text` carried over to `new_text`, a reviewer's edit of it.

    Positions are mapped through a word-level diff of the two texts (characters in an
    unchanged stretch keep their place in it; a position inside a changed stretch goes
    to that stretch's replacement). A span whose surface text still occurs in the new
    text is placed on the occurrence nearest to its mapped start (ties: the earlier) and
    keeps its review state. Any other span is flagged `needs_review` and covers what its
    old range became, so a span never points outside its text nor disagrees with it; a
    span whose every character was deleted has nothing left to point to and is removed."""
    edit = _Edit(old_text, new_text)
    carried: list[Span] = []
    for span in spans:
        target = edit.start(span.start)
        nearest = _nearest_occurrence(new_text, span.text, target)
        if nearest is not None:
            carried.append(Span(nearest, nearest + len(span.text), span.label, span.text, span.needs_review))
            continue
        end = edit.end(span.end)
        if target < end:
            carried.append(Span(target, end, span.label, new_text[target:end], needs_review=True))
    return tuple(carried)


# Words, runs of spaces, single other characters: the units of the diff. Character-level
# diffs of 20,000-character texts are slow and match stray letters across an edit.
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
_MAX_DIFFED_TOKENS = 1000


class _Edit:
    """The stretches of a word-level diff, as character ranges: (tag, old_start, old_end,
    new_start, new_end), tag "equal" or a change; insertions (empty old range) omitted."""

    def __init__(self, old_text: str, new_text: str) -> None:
        old_tokens, new_tokens = _tokens(old_text), _tokens(new_text)
        old_starts = _starts(old_tokens)
        new_starts = _starts(new_tokens)
        # Most edits touch one place: the unchanged head and tail are matched for free,
        # and only what lies between is diffed (or, past a size where difflib's cost
        # grows quadratically, taken as one change).
        head = 0
        while head < min(len(old_tokens), len(new_tokens)) and old_tokens[head] == new_tokens[head]:
            head += 1
        tail = 0
        while (
            tail < min(len(old_tokens), len(new_tokens)) - head
            and old_tokens[len(old_tokens) - 1 - tail] == new_tokens[len(new_tokens) - 1 - tail]
        ):
            tail += 1
        old_middle = old_tokens[head : len(old_tokens) - tail]
        new_middle = new_tokens[head : len(new_tokens) - tail]
        if len(old_middle) <= _MAX_DIFFED_TOKENS and len(new_middle) <= _MAX_DIFFED_TOKENS:
            opcodes = difflib.SequenceMatcher(None, old_middle, new_middle, autojunk=False).get_opcodes()
        else:
            opcodes = [("replace", 0, len(old_middle), 0, len(new_middle))]
        opcodes = [
            ("equal", -head, 0, -head, 0),
            *opcodes,
            ("equal", len(old_middle), len(old_middle) + tail, len(new_middle), len(new_middle) + tail),
        ]
        self._stretches = [
            (tag, old_starts[head + i1], old_starts[head + i2], new_starts[head + j1], new_starts[head + j2])
            for tag, i1, i2, j1, j2 in opcodes
            if i1 < i2
        ]
        self._new_length = len(new_text)

    def start(self, position: int) -> int:
        """Where a span starting at `position` (a character of the old text) starts now."""
        for tag, old_start, old_end, new_start, _ in self._stretches:
            if old_start <= position < old_end:
                return new_start + (position - old_start) if tag == "equal" else new_start
        return self._new_length

    def end(self, position: int) -> int:
        """Where a span ending at `position` (exclusive) ends now."""
        last = position - 1
        for tag, old_start, old_end, new_start, new_end in self._stretches:
            if old_start <= last < old_end:
                return new_start + (last - old_start) + 1 if tag == "equal" else new_end
        return self._new_length


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _starts(tokens: list[str]) -> list[int]:
    """The character offset of each token, and the text's length after the last."""
    starts = [0]
    for token in tokens:
        starts.append(starts[-1] + len(token))
    return starts


def _nearest_occurrence(text: str, needle: str, target: int) -> int | None:
    best: int | None = None
    position = text.find(needle)
    while position != -1:
        if best is None or abs(position - target) < abs(best - target):
            best = position
        position = text.find(needle, position + 1)
    return best


def reviewed(spans: Sequence[Span]) -> tuple[Span, ...]:
    """The spans fit to be pre-annotations: those an edit did not put in doubt (the
    import's SQL applies the same rule to the stored JSON)."""
    return tuple(span for span in spans if not span.needs_review)


def overlapping(spans: Sequence[Span]) -> tuple[int, int] | None:
    """Indexes (earlier, later) of the first two spans that share a character, if any."""
    ordered = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end))
    for before, after in itertools.pairwise(ordered):
        if spans[after].start < spans[before].end:
            return min(before, after), max(before, after)
    return None


def after_edit(
    text: str,
    spans: Sequence[Span],
    *,
    new_text: str | None,
    new_spans: Sequence[Span] | None,
    labels: Collection[str],
    field: str,
) -> tuple[Span, ...] | None:
    """A staged text's spans after an update (None: unchanged). Spans a reviewer sends
    replace the old ones (checked against the text as it will be, and the job's
    labels; they are reviewed by definition); an edit of the text alone carries the
    old spans over (`relocated`)."""
    if new_spans is not None:
        return checked(text if new_text is None else new_text, new_spans, field=field, allowed_labels=labels)
    if new_text is not None and new_text != text:
        return relocated(text, new_text, spans)
    return None

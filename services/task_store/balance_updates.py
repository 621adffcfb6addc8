"""The entity balance of one job advanced text by text, for WatchGenerationJob.

A watch counts the job's texts once, when it starts (repository/entity_balance.py),
then adds each new staged text here instead of counting every text again on every
event. The rules are those of the SQL, applied to one text of the job:

- a DISCARDED text counts for nothing;
- a label's `texts` grows by one when the text has at least one span of the label, its
  `spans` by the number of such spans; a label no row lists yet gets a row at the end
  (the job's labels are all listed from the start, so only a label outside them would);
- a listed variable value the text was generated with gains the text, and the text's
  spans that cover exactly the value, with the label the job binds the variable to
  when it binds it (any label otherwise); values the job does not declare have no row
  and stay uncounted, as in the SQL.

Pure functions over records: no database, no protobuf.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping

from services.task_store.records import EntityBalance, LabelBalance, StagedText, TextState, ValueBalance


def with_text(balance: EntityBalance, text: StagedText, variable_labels: Mapping[str, str]) -> EntityBalance:
    """`balance` of a job with `text`, one of its new texts, counted in; `variable_labels`
    is the job's binding of variables to labels."""
    if text.state is TextState.DISCARDED:
        return balance
    spans_of = Counter(span.label for span in text.spans)
    labels = [
        dataclasses.replace(item, texts=item.texts + 1, spans=item.spans + spans_of[item.label])
        if item.label in spans_of
        else item
        for item in balance.labels
    ]
    listed = {item.label for item in balance.labels}
    labels.extend(LabelBalance(label, 1, count) for label, count in sorted(spans_of.items()) if label not in listed)
    return EntityBalance(
        texts=balance.texts + 1,
        spans=balance.spans + len(text.spans),
        dropped_spans=balance.dropped_spans,
        labels=tuple(labels),
        values=tuple(_with_value(item, text, variable_labels) for item in balance.values),
    )


def _with_value(item: ValueBalance, text: StagedText, variable_labels: Mapping[str, str]) -> ValueBalance:
    if text.variables.get(item.variable) != item.value:
        return item
    bound = variable_labels.get(item.variable)
    marked = sum(1 for span in text.spans if span.text == item.value and (bound is None or span.label == bound))
    return dataclasses.replace(item, texts=item.texts + 1, spans=item.spans + marked)

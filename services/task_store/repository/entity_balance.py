"""SQL of the entity balance (GetEntityBalance): texts and spans per label and per prompt
variable value, of one job or of every job of a project, counted over the stored spans.

All counts come from one snapshot (REPEATABLE READ), so that texts appended while it
runs cannot make the totals disagree with the rows.

What is counted: texts of the scope's jobs that are not DISCARDED (staged and imported
ones, with the spans they hold now). A variable value's spans are the spans of its texts
that cover exactly the value, with the label the job binds the variable to when it does
(any label otherwise). Labels and values nobody used are listed with zero counts: the
zeros are what a user balancing rare entities looks for.

A watch counts a job's texts up to the one it starts after (`through_seq`), then adds
each newer text with the same rules in Python (balance_updates.py): a change to the
rules here is a change there.
"""

from __future__ import annotations

from services.task_store.records import EntityBalance, LabelBalance, ValueBalance
from services.task_store.repository.transactions import PooledRepository

# %(project)s always, %(job)s NULL for the whole project, %(through)s NULL for every text.
_SCOPE = """
WITH jobs AS (
    SELECT id, labels, variables, variable_labels, dropped_spans FROM generation_jobs
    WHERE project = %(project)s AND (%(job)s::text IS NULL OR id = %(job)s)
), texts AS (
    SELECT t.id, t.job_id, t.variables, t.spans FROM staged_texts t JOIN jobs j ON j.id = t.job_id
    WHERE t.project = %(project)s AND t.state <> 'DISCARDED' AND (%(through)s::bigint IS NULL OR t.seq <= %(through)s)
), spans AS (
    SELECT t.id AS text_id, t.job_id, t.variables, s->>'label' AS label, s->>'text' AS surface
    FROM texts t, jsonb_array_elements(t.spans) s
)
"""

_TOTALS = (
    _SCOPE
    + """
SELECT (SELECT count(*) FROM texts) AS texts,
       (SELECT count(*) FROM spans) AS spans,
       (SELECT coalesce(sum(dropped_spans), 0)::bigint FROM jobs) AS dropped_spans
"""
)

_LABELS = (
    _SCOPE
    + """
, declared AS (
    SELECT DISTINCT l->>'name' AS label FROM jobs, jsonb_array_elements(jobs.labels) l
), counted AS (
    SELECT label, count(DISTINCT text_id) AS texts, count(*) AS spans FROM spans GROUP BY label
)
SELECT coalesce(d.label, c.label) AS label, coalesce(c.texts, 0) AS texts, coalesce(c.spans, 0) AS spans
FROM declared d FULL JOIN counted c ON c.label = d.label
ORDER BY 1
"""
)

_VALUES = (
    _SCOPE
    + """
, declared AS (
    SELECT DISTINCT v->>'name' AS variable, x.value
    FROM jobs, jsonb_array_elements(jobs.variables) v, jsonb_array_elements_text(v->'values') AS x(value)
), bound AS (
    SELECT b.key AS variable, array_agg(DISTINCT b.value ORDER BY b.value) AS labels
    FROM jobs, jsonb_each_text(jobs.variable_labels) b GROUP BY b.key
), used AS (
    SELECT u.key AS variable, u.value, count(*) AS texts
    FROM texts, jsonb_each_text(texts.variables) u GROUP BY 1, 2
), marked AS (
    SELECT u.key AS variable, u.value, count(*) AS spans
    FROM spans s JOIN jobs j ON j.id = s.job_id, jsonb_each_text(s.variables) u
    WHERE s.surface = u.value AND coalesce(j.variable_labels->>u.key, s.label) = s.label
    GROUP BY 1, 2
)
SELECT d.variable, d.value, coalesce(b.labels, '{}') AS labels,
       coalesce(u.texts, 0) AS texts, coalesce(m.spans, 0) AS spans
FROM declared d
LEFT JOIN bound b ON b.variable = d.variable
LEFT JOIN used u ON u.variable = d.variable AND u.value = d.value
LEFT JOIN marked m ON m.variable = d.variable AND m.value = d.value
ORDER BY 1, 2
"""
)


class EntityBalanceRepository(PooledRepository):
    def entity_balance(self, project: str, job_id: str | None, *, through_seq: int | None = None) -> EntityBalance:
        """The balance of job `job_id` of `project`, or of the whole project when None;
        with `through_seq`, of the texts written up to that seq only (a watch's start).
        The caller checks that the job exists (a missing one counts as empty here)."""
        scope = {"project": project, "job": job_id, "through": through_seq}
        with self._cursor() as cur:
            # The first statement of the call's transaction, as SET TRANSACTION must be.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            totals = cur.execute(_TOTALS, scope).fetchone()
            assert totals is not None, "an aggregate without GROUP BY returns one row"
            labels = cur.execute(_LABELS, scope).fetchall()
            values = cur.execute(_VALUES, scope).fetchall()
        return EntityBalance(
            texts=totals["texts"],
            spans=totals["spans"],
            dropped_spans=totals["dropped_spans"],
            labels=tuple(LabelBalance(row["label"], row["texts"], row["spans"]) for row in labels),
            values=tuple(
                ValueBalance(row["variable"], row["value"], tuple(row["labels"]), row["texts"], row["spans"])
                for row in values
            ),
        )

-- Entity spans (pre-annotation, issue #14). Offsets in every stored span are Python
-- string indices (code points) over the row's text, end exclusive.

-- The job's labels [{"name": "DRUG", "description": "…"}, …], the binding of prompt
-- variables to labels {"drug": "DRUG"}, and how many entities named by the model the
-- workers could not locate in their texts (dropped, never guessed).
ALTER TABLE generation_jobs ADD COLUMN labels jsonb NOT NULL DEFAULT '[]';
ALTER TABLE generation_jobs ADD COLUMN variable_labels jsonb NOT NULL DEFAULT '{}';
ALTER TABLE generation_jobs ADD COLUMN dropped_spans bigint NOT NULL DEFAULT 0;

-- [{"start": 0, "end": 7, "label": "DRUG", "text": "aspirin", "needs_review": false}, …]
-- No index: spans are read with their text, never searched.
ALTER TABLE staged_texts ADD COLUMN spans jsonb NOT NULL DEFAULT '[]';

-- Pre-annotations carried over at import:
-- [{"model_version": "…", "job": "<job id>", "spans": [<span>, …]}]
ALTER TABLE tasks ADD COLUMN predictions jsonb NOT NULL DEFAULT '[]';

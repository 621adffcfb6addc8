-- The task store's tables: generation jobs, the outcome of each slot of a job (a
-- staged text or a failure), and the tasks imported from staged texts.
--
-- States are the proto enum names without their prefix ('QUEUED', 'STAGED', …), so
-- that psql sessions read like the API.

CREATE TABLE generation_jobs (
    id                  text PRIMARY KEY,
    -- Newest-first listing and page tokens use this, not create_time: it is unique.
    seq                 bigserial NOT NULL,
    project             text NOT NULL,
    -- NULL when the caller gave none: only real ids take part in idempotency.
    request_id          text,
    prompt              text NOT NULL,
    system_prompt       text NOT NULL DEFAULT '',
    temperature         double precision NOT NULL,
    text_count          integer NOT NULL CHECK (text_count > 0),
    provider            text NOT NULL,
    model               text NOT NULL DEFAULT '',
    max_output_tokens   integer NOT NULL DEFAULT 0,
    seed                bigint,
    tags                text[] NOT NULL DEFAULT '{}',
    -- [{"name": "city", "values": ["Paris", "Lyon"]}, …]
    variables           jsonb NOT NULL DEFAULT '[]',
    is_unique           boolean NOT NULL DEFAULT false,
    prompt_hash         text NOT NULL,
    state               text NOT NULL DEFAULT 'QUEUED'
                        CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    produced            integer NOT NULL DEFAULT 0,
    failed              integer NOT NULL DEFAULT 0,
    duplicates          integer NOT NULL DEFAULT 0,
    prompt_tokens       bigint NOT NULL DEFAULT 0,
    completion_tokens   bigint NOT NULL DEFAULT 0,
    error_reason        text NOT NULL DEFAULT '',
    error_message       text NOT NULL DEFAULT '',
    enqueued            boolean NOT NULL DEFAULT false,
    -- Bumped by every change that clients can see; the etag is derived from it.
    version             bigint NOT NULL DEFAULT 1,
    create_time         timestamptz NOT NULL DEFAULT now(),
    start_time          timestamptz,
    end_time            timestamptz,
    update_time         timestamptz NOT NULL DEFAULT now(),
    CHECK (produced + failed <= text_count)
);

-- Concurrent creates with the same request id meet here: the loser's INSERT waits for
-- the winner's commit, then does nothing and reads the winner's job.
CREATE UNIQUE INDEX generation_jobs_request_id ON generation_jobs (project, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX generation_jobs_project_seq ON generation_jobs (project, seq DESC);
CREATE INDEX generation_jobs_project_state_seq ON generation_jobs (project, state, seq DESC);

CREATE TABLE staged_texts (
    id                  text PRIMARY KEY,
    -- Write order. Appends of one project take a project lock while they insert, so
    -- seq order is also commit order and a reader's snapshot always holds every text
    -- below its newest one: keyset pages on seq neither skip nor repeat a text.
    seq                 bigserial NOT NULL,
    project             text NOT NULL,
    job_id              text NOT NULL REFERENCES generation_jobs (id),
    slot                integer NOT NULL CHECK (slot >= 0),
    text                text NOT NULL,
    -- The text as generated; NULL until the first edit (then text differs). Keeping
    -- rows narrow matters: an import rewrites every row it imports.
    original_text       text,
    tags                text[] NOT NULL DEFAULT '{}',
    state               text NOT NULL DEFAULT 'STAGED' CHECK (state IN ('STAGED', 'IMPORTED', 'DISCARDED')),
    -- Its normalized form repeats an earlier text of the project (see duplicates.py).
    duplicate           boolean NOT NULL DEFAULT false,
    task_id             text,
    -- Lineage reported by the worker; the job-level part (provider, temperature,
    -- seed, prompt hash) is read from generation_jobs.
    model               text NOT NULL DEFAULT '',
    variables           jsonb NOT NULL DEFAULT '{}',
    prompt_tokens       integer NOT NULL DEFAULT 0,
    completion_tokens   integer NOT NULL DEFAULT 0,
    finish_reason       text NOT NULL DEFAULT '',
    latency_us          bigint NOT NULL DEFAULT 0,
    generate_time       timestamptz,
    version             bigint NOT NULL DEFAULT 1,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now(),
    -- A slot holds at most one text, whatever workers redeliver.
    CONSTRAINT staged_texts_job_slot UNIQUE (job_id, slot)
)
-- Room on each page for a row's new version: with no index on the columns an import,
-- discard or restore changes (state, task_id, version, update_time), those updates are
-- HOT and touch no index, which keeps importing 100,000 texts within seconds.
WITH (fillfactor = 70);

-- Keyset pages (seq DESC) of a project and of one job read the same number of index
-- entries on page 1 and on page 1000. There is deliberately no index on state (it would
-- make every import update write to every index); a state filter walks the project's
-- seq index and skips rows of other states.
CREATE INDEX staged_texts_project_seq ON staged_texts (project, seq DESC);
CREATE INDEX staged_texts_job_seq ON staged_texts (job_id, seq DESC);
CREATE INDEX staged_texts_tags ON staged_texts USING gin (tags);

-- sha256 of the normalized form of every text a project has seen. Insert-only and
-- apart from staged_texts, so that imports and edits (which rewrite staged rows)
-- do not maintain an index they never use.
CREATE TABLE text_fingerprints (
    project             text NOT NULL,
    hash                bytea NOT NULL,
    PRIMARY KEY (project, hash)
);

CREATE TABLE failed_slots (
    job_id              text NOT NULL REFERENCES generation_jobs (id),
    slot                integer NOT NULL CHECK (slot >= 0),
    reason              text NOT NULL,
    message             text NOT NULL DEFAULT '',
    create_time         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, slot)
);

CREATE TABLE tasks (
    id                  text PRIMARY KEY,
    seq                 bigserial NOT NULL,
    project             text NOT NULL,
    text                text NOT NULL,
    tags                text[] NOT NULL DEFAULT '{}',
    -- An import creates a staged text's task at most once, even under concurrent imports.
    -- No foreign keys here: an import inserts up to 100,000 rows in one statement and
    -- the per-row referential triggers cost a third of its time; the ids come from the
    -- rows the import has just locked, and staged texts and jobs are never deleted.
    staged_text_id      text,
    job_id              text,
    version             bigint NOT NULL DEFAULT 1,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_staged_text UNIQUE (staged_text_id)
);

CREATE INDEX tasks_project_seq ON tasks (project, seq DESC);
CREATE INDEX tasks_job_seq ON tasks (job_id, seq DESC);
CREATE INDEX tasks_tags ON tasks USING gin (tags);

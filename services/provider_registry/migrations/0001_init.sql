CREATE TABLE providers (
    id text PRIMARY KEY,
    display_name text NOT NULL,
    kind smallint NOT NULL,
    endpoint text NOT NULL DEFAULT '',
    deployment text NOT NULL DEFAULT '',
    api_version text NOT NULL DEFAULT '',
    model text NOT NULL DEFAULT '',
    organization text NOT NULL DEFAULT '',
    -- Fernet token of the API key (NULL when the provider needs no key); never plaintext.
    api_key_encrypted bytea,
    key_hint text NOT NULL DEFAULT '',
    requests_per_minute integer NOT NULL DEFAULT 0,
    tokens_per_minute integer NOT NULL DEFAULT 0,
    max_concurrent_requests integer NOT NULL DEFAULT 0,
    max_choices_per_request integer NOT NULL DEFAULT 1,
    request_timeout_ms integer NOT NULL DEFAULT 0,
    last_validation_state smallint NOT NULL DEFAULT 0,
    last_validation_message text NOT NULL DEFAULT '',
    last_validation_latency_ms integer NOT NULL DEFAULT 0,
    last_validated_at timestamptz,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX providers_display_name_key ON providers (lower(display_name));

CREATE TABLE project_providers (
    project text NOT NULL,
    provider_id text NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    is_default boolean NOT NULL DEFAULT false,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, provider_id)
);
CREATE INDEX project_providers_provider_idx ON project_providers (provider_id);
-- At most one default per project.
CREATE UNIQUE INDEX project_providers_one_default ON project_providers (project) WHERE is_default;

CREATE TABLE api_tokens (
    id text PRIMARY KEY,
    display_name text NOT NULL DEFAULT '',
    -- SHA-256 of the secret: tokens are random 256-bit strings, so a fast hash is enough.
    secret_sha256 text NOT NULL UNIQUE,
    token_prefix text NOT NULL,
    is_admin boolean NOT NULL,
    projects text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Models a generation job may name instead of the provider's default (admins decide).
ALTER TABLE providers ADD COLUMN allowed_models text[] NOT NULL DEFAULT '{}';

-- The trail of admin changes (audit.py): who (the token's name, never its secret),
-- what, when. Insert-only.
CREATE TABLE audit_events (
    seq         bigserial PRIMARY KEY,
    actor       text NOT NULL,
    method      text NOT NULL,
    resource    text NOT NULL,
    summary     text NOT NULL,
    request_id  text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now()
);

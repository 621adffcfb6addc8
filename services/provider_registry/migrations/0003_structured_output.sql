-- How pre-annotation jobs ask the provider for structured output (StructuredOutputMode:
-- 1 JSON_SCHEMA, 2 JSON_OBJECT). Existing providers get their kind's default, the one
-- CreateProvider gives (provider_rules.DEFAULT_STRUCTURED_OUTPUT): JSON mode for
-- OpenAI-compatible servers (kind 3), JSON schema for OpenAI and Azure OpenAI.
ALTER TABLE providers ADD COLUMN structured_output smallint NOT NULL DEFAULT 0;
UPDATE providers SET structured_output = CASE kind WHEN 3 THEN 2 ELSE 1 END;

-- AIP-155 request identification (see Repository.create_job).

-- sha256 of the request a request_id was first used for: the same id with another
-- request is refused. NULL for jobs created before this column existed.
ALTER TABLE generation_jobs ADD COLUMN request_hash bytea;

-- When a CreateJob call last took the right to enqueue the job's messages; while the
-- claim is fresh, concurrent or retried calls with the same request_id enqueue nothing.
ALTER TABLE generation_jobs ADD COLUMN enqueue_claim_time timestamptz;

-- Recovery of jobs whose queue messages were lost (see Repository.claim_stalled_jobs).

-- When a stalled job was last handed out for re-enqueueing; NULL: never.
ALTER TABLE generation_jobs ADD COLUMN recover_time timestamptz;

-- The periodic search looks only at unfinished jobs, however many have finished.
CREATE INDEX generation_jobs_unfinished_update_time ON generation_jobs (update_time)
    WHERE state IN ('QUEUED', 'RUNNING');

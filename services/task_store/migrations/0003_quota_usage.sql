-- Project quotas (quotas.py) count the jobs a project created in the last minute on
-- every job creation: this index keeps that a short range scan however many jobs the
-- project has.
CREATE INDEX generation_jobs_project_create_time ON generation_jobs (project, create_time);

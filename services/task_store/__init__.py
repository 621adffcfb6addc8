"""The task store: generation jobs and their slots, staged texts, and the tasks
imported from them, in its own Postgres database.

Serves, to the gateway and workers only: synthtasks.v1.GenerationService (except
CreateGenerationJob), synthtasks.v1.TaskService and synthtasks.internal.v1.JobStoreService.
Start it with `synthtasks-task-store`; `build_server` (server.py) starts it in-process."""

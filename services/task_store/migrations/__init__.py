"""SQL migrations of the task store, applied in order by services.runtime.migrations."""

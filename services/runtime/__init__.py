"""Shared runtime of every synthtasks service: settings, gRPC bootstrap, errors,
logging, metrics, database pool and migrations."""

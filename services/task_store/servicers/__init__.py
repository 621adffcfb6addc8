"""gRPC servicers of the task store, one module per service: requests are validated and
turned into domain values (`proto_conversions.py`), the repositories do the work, records
are turned back into protos. No SQL.

The gateway authenticates and authorizes before forwarding; these servicers still
check every field they are given, naming it in INVALID_ARGUMENT, because they are the
ones that write."""

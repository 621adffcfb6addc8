"""The API vocabulary every service and the CLI share: resource names, page tokens,
limits, ErrorInfo reasons and etags. Not a service; imported by the gateway, the
registry, the task store and the CLI, so that each rule is written once.

- names.py        resource-name patterns and parsers (always fullmatch)
- page_tokens.py  AIP-158 page sizes and opaque, bounded page tokens
- limits.py       limits enforced by more than one service
- reasons.py      every ErrorInfo reason, as one enum
- etags.py        the one etag format (`v{version}`)
- quoting.py      how an error message quotes a caller's value (a short prefix)
- labels.py       entity labels of a job and their binding to prompt variables
"""

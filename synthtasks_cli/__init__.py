"""`synthtasks`: the command-line client of the synthtasks gateway.

It is a gRPC client like any other (it speaks only the public `synthtasks.v1` API),
plus `synthtasks stack up|down|status` to run every service as local processes and
`synthtasks demo` to walk the whole flow once. Entry point: `synthtasks_cli.__main__:main`.
"""

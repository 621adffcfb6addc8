"""`synthtasks`: parse, run one command, and turn every failure into one line on stderr.

Exit codes: 0 success; 1 the gateway refused or a job/check failed; 2 bad usage or a
machine that is not ready (the line says how to fix it); 130 interrupted."""

from __future__ import annotations

import os
import sys
import traceback
from typing import TextIO

import grpc

from synthtasks_cli.context import Context
from synthtasks_cli.errors import CliError, describe_rpc_error
from synthtasks_cli.output import Output
from synthtasks_cli.parser import build_parser

DEBUG_SETTING = "SYNTHTASKS_DEBUG"


def run(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    context = Context(args, Output(json_mode=args.json, stdout=stdout, stderr=err))

    def fail(line: str, code: int) -> int:
        err.write(f"error: {line}\n")
        err.flush()
        return code

    try:
        return int(args.run(context, args) or 0)
    except CliError as exc:
        return fail(str(exc), exc.exit_code)
    except grpc.RpcError as exc:
        address = context.client.settings.address if context._client else ""
        return fail(describe_rpc_error(exc, gateway=address), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:
        # `synthtasks texts list | head`: the reader left; nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - last resort: one line instead of a traceback, unless debugging
        if os.environ.get(DEBUG_SETTING):
            traceback.print_exc(file=err)
        return fail(f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_SETTING}=1 to see the traceback)", 1)
    finally:
        context.close()


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()

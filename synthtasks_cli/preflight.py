"""Checks run before `stack up` starts anything, each failing with one line that says
what is wrong and how to fix it: Postgres and Redis reachable, ports free."""

from __future__ import annotations

import errno
import re
import shutil
import socket
import subprocess
from pathlib import Path

import psycopg
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from synthtasks_cli.errors import SetupError


def _postgres_start_hint() -> str:
    versions = (
        sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir())
        if Path("/etc/postgresql").exists()
        else []
    )
    if versions and shutil.which("pg_ctlcluster"):
        return f"start it with: pg_ctlcluster --skip-systemctl-redirect {versions[-1]} main start"
    return "start PostgreSQL, or point the setting at a running server"


def _postgres_elsewhere(host: str, port: int) -> int | None:
    """The port of a PostgreSQL server that does answer on `host` when `port` does not:
    the usual mistake is the port in the URL, not a stopped server."""
    candidates = [5432]
    if shutil.which("pg_lsclusters"):
        listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False)
        candidates = [int(f[2]) for f in (line.split() for line in listing.stdout.splitlines()) if len(f) > 3]
    for candidate in candidates:
        if candidate == port:
            continue
        try:
            with socket.create_connection((host, candidate), timeout=1):
                return candidate
        except OSError:
            continue
    return None


def _without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _redis_start_hint(port: int) -> str:
    if shutil.which("redis-server"):
        return f"start it with: redis-server --daemonize yes --bind 127.0.0.1 --port {port} --save '' --appendonly no"
    return "install and start Redis (e.g. apt-get install redis-server), or point the setting at a running server"


def postgres_target(url: str) -> tuple[str, int]:
    params = conninfo_to_dict(url)
    host = str(params.get("host") or "localhost")
    return host, int(params.get("port") or 5432)


def check_postgres(url: str, setting: str) -> None:
    host, port = postgres_target(url)
    try:
        # The service creates its own database; the server's maintenance database must exist.
        with psycopg.connect(make_conninfo(url, dbname="postgres"), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if any(word in str(exc) for word in ("Connection refused", "could not connect", "timeout", "No such file")):
            elsewhere = _postgres_elsewhere(host, port)
            hint = (
                f"a server is running on {host}:{elsewhere}: fix the port in {setting} ({_without_password(url)})"
                if elsewhere is not None
                else _postgres_start_hint()
            )
            raise SetupError(f"Postgres is not reachable at {host}:{port} ({setting}); {hint}") from None
        raise SetupError(f"Postgres at {host}:{port} refused the connection ({setting}): {detail}") from None


def check_redis(url: str, setting: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    pool_args = client.connection_pool.connection_kwargs
    host, port = pool_args.get("host", "127.0.0.1"), int(pool_args.get("port", 6379))
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise SetupError(f"Redis at {host}:{port} refused the connection ({setting}): {exc}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        raise SetupError(f"Redis is not reachable at {host}:{port} ({setting}); {_redis_start_hint(port)}") from None
    finally:
        client.close()


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise SetupError(f"{address!r} is not a host:port address") from None


def check_port_free(host: str, port: int, setting: str, *, example: str) -> None:
    """Fail when another program listens on host:port (port 0 means none is used)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Servers set SO_REUSEADDR too: a port in TIME_WAIT after a restart is free for them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SetupError(
                    f"port {port} on {host} ({setting}) is in use by another program; "
                    f"stop it or set {setting}={example}"
                ) from None
            raise SetupError(f"cannot bind {host}:{port} ({setting}): {exc.strerror}") from None

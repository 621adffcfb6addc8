"""Which provider endpoints the registry accepts, so that an admin API cannot be turned
into a way to reach the cluster's own network (cloud metadata at 169.254.169.254,
internal services, loopback).

With private endpoints refused (SYNTHTASKS_REGISTRY_ALLOW_PRIVATE_ENDPOINTS=false, the
production overlay), an endpoint's host must be, or resolve only to, global addresses:
private, loopback, link-local, shared, reserved, multicast and unspecified ranges are
refused. Local development allows them (a llama.cpp server on 127.0.0.1).

Checked when a provider is saved and again before every live check, which never follows
redirects (provider_access.sync_client). Not covered: a name whose DNS answer changes
between the check and the call (rebinding); egress NetworkPolicies are the defence there."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from services.vocabulary.quoting import quoted


def endpoint_refusal(endpoint: str, *, allow_private: bool) -> str | None:
    """Why `endpoint` may not be used, or None when it may."""
    if allow_private or not endpoint:
        return None  # empty: the provider's public default (api.openai.com)
    parsed = urlparse(endpoint)
    host = parsed.hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError):
            return f"the host {quoted(host)} cannot be resolved, so it cannot be checked against the address rules"
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            return (
                f"resolves to {address}, a private, loopback or link-local address; this deployment refuses those"
                " (SYNTHTASKS_REGISTRY_ALLOW_PRIVATE_ENDPOINTS=false)"
            )
    return None

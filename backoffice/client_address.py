"""The address a request comes from, for the API throttles and the admin login lockout.

Both count per client, so both must agree on who the client is, and neither may take a client's
word for it: ``X-Forwarded-For`` is read only as far as ``TRUSTED_PROXY_COUNT`` proxies in front
of the web process appended to it; with no proxy (the default) it is ignored and the address is
the connection's."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str:
    remote_addr = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote_addr
    # Each proxy appends the address it received the request from: the client is the entry
    # the outermost trusted proxy wrote, counted from the right.
    addresses = [a.strip() for a in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))] or remote_addr

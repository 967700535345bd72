"""Which endpoint URLs are accepted: http(s) only, and no private, loopback or link-local address
unless the deployment allows it (the gateway must not become a way into the internal network)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from bio_shared.errors import Unprocessable


def check_url(url: str, *, allow_private: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable("webhook URL must be http(s)://host/...", code="invalid_webhook_url")
    if parts.username or parts.password:
        raise Unprocessable("webhook URL must not carry credentials", code="invalid_webhook_url")
    if not allow_private:
        for addr in _addresses(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)):
            ip = ipaddress.ip_address(addr)
            if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
                raise Unprocessable("webhook URL resolves to a private or loopback address",
                                    code="webhook_url_not_public", details={"address": addr})
    return url


def _addresses(host: str, port: int) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})
    except (socket.gaierror, UnicodeError) as exc:
        raise Unprocessable("webhook URL host does not resolve", code="invalid_webhook_url") from exc

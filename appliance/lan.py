"""Where the box is on the shop's LAN: the address a browser reaches it at.

The panel shows it, and the box's HTTPS certificate names it.
"""

from __future__ import annotations

import socket


def lan_ip() -> str | None:
    """The IPv4 address the box would use to reach the outside world, or None without a network.

    Found with a UDP socket that is connected but never sends: the kernel picks the route and so
    the address, and no packet leaves the box."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def lan_address(listen: str, https: bool = False) -> str | None:
    """Where a browser on the LAN reaches the page: 'host:port' (just 'host' on the scheme's usual
    port), or None without a page or a network. For a page on every interface (0.0.0.0) the host
    is :func:`lan_ip`."""
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    suffix = "" if port == ("443" if https else "80") else f":{port}"
    if host not in ("", "0.0.0.0", "::"):
        return f"{host}{suffix}"
    ip = lan_ip()
    return f"{ip}{suffix}" if ip else None

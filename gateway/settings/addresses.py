"""Where the gateway listens, and whether its policy is the published dev one."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

# The development policy shipped with the package: one demo tenant whose key
# is documented in the README. Real deployments point policy_file elsewhere.
DEV_POLICY = Path(__file__).resolve().parents[2] / "policies" / "examples" / "dev.yaml"


def is_dev_policy(path: Path) -> bool:
    """Whether `path` is the shipped dev policy: the same file, or a byte-for-byte
    copy of it anywhere (its sha256 equals the shipped file's)."""
    try:
        if path.resolve() == DEV_POLICY.resolve():
            return True
        shipped = DEV_POLICY.read_bytes()
        return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(shipped).digest()
    except (OSError, RuntimeError):  # unreadable: the policy loader reports it
        return False


def split_listen(listen: str) -> tuple[str, str]:
    """`host:port` -> (host, port); IPv6 brackets dropped, `[::]:1` -> ("::", "1")."""
    host, _, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def is_loopback(listen: str) -> bool:
    """Whether a listen address is reachable from this machine only.

    Conservative: a host name other than `localhost`, a wildcard address or
    anything unparsable counts as reachable from elsewhere.
    """
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = split_listen(listen)[0]
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback

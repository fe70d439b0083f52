"""Connecting to a Dask cluster for the long, parallel jobs (``seco collect --scheduler``, ``seco import --dask``).

No torch; imported by ``seco.collect`` and ``seco.imports``.
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

from seco.errors import ConfigError, SecoError


def _reachable(address: str, fail: Any) -> None:
    """Fail fast on a TCP scheduler address nobody listens on (the Dask client would wait its timeout)."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(address if "://" in address else f"tcp://{address}")
    if u.scheme not in ("tcp", "tls") or not u.hostname or not u.port:
        return  # another transport (inproc, ucx): let Dask judge
    try:
        with socket.create_connection((u.hostname, u.port), timeout=5):
            pass
    except OSError as e:
        raise fail(str(e)) from e


def dask_executor(address: str, *, flag: str, instead: str,
                  error: type[SecoError] = ConfigError) -> tuple[cf.Executor, int, Any]:
    """An executor on the Dask cluster at ``address``: (executor, parallel slots = worker threads, client).

    Args:
        address: the scheduler, e.g. ``tcp://10.0.0.5:8786``.
        flag: the command-line option that gave it (for messages), e.g. ``--scheduler``.
        instead: what to do without a cluster (for messages), e.g. ``drop --scheduler to use local threads``.
        error: the error type raised when the cluster cannot be used.

    Raises:
        ConfigError: Dask distributed is not installed.
        error: the scheduler cannot be reached, or has no workers.
    """
    try:
        from distributed import Client
    except ImportError as e:
        raise ConfigError(f"{flag} needs Dask distributed: pip install 'dask[distributed]' (a dependency "
                          "of seco: reinstall seco)") from e

    def fail(cause: str) -> SecoError:
        return error(f"cannot connect to the Dask scheduler at {address!r} ({cause}); start one "
                     f"(`dask scheduler`) or {instead}")

    _reachable(address, fail)
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except Exception as e:
        raise fail(f"{type(e).__name__}: {e}") from e
    slots = sum(client.nthreads().values())
    if slots == 0:
        client.close()
        raise error(f"the Dask cluster at {address} has no workers; start some (`dask worker ADDR`)")
    return client.get_executor(pure=False), slots, client

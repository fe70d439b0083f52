"""Retries for ``seco collect``: which errors are transient, and exponential backoff around a call."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from seco.collect.patches import TransientReadError
from seco.errors import ConfigError

T = TypeVar("T")

_TRANSIENT_TEXT = re.compile(
    r"(?i)(HTTP (response )?(code|status)[^0-9]{0,4}(5\d\d|429)\b|\b(5\d\d|429) (Server Error|Too Many)"
    r"|timed out|timeout was reached|connection (reset|refused|aborted)|temporarily unavailable"
    r"|remote end closed|broken pipe)"
)


def is_transient(exc: BaseException) -> bool:
    """Whether an error is worth retrying: a timeout, a dropped connection, HTTP 429 or 5xx.

    Follows ``__cause__``/``__context__``, so a :class:`CatalogError` wrapping a pystac-client ``APIError``
    with status 503, or a :class:`ReadError` whose GDAL message says ``HTTP response code: 502``, counts.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, TimeoutError | ConnectionError | TransientReadError):
            return True
        status = getattr(e, "status_code", None)
        if status is None:
            status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int) and (status >= 500 or status == 429):
            return True
        if type(e).__module__.startswith("requests") and type(e).__name__ in (
                "Timeout", "ConnectTimeout", "ReadTimeout", "ConnectionError", "ChunkedEncodingError"):
            return True
        if _TRANSIENT_TEXT.search(str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient errors.

    Attributes:
        retries: extra attempts after the first (0: no retry).
        backoff_s: wait before the first retry; doubles at each further retry (times a jitter in [0.5, 1]).
        backoff_max_s: longest single wait.
    """

    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= 100:
            raise ConfigError(f"retries={self.retries!r} must be an integer in 0..100 (e.g. --retries 3)")
        if not (0 <= self.backoff_s <= 600 and 0 <= self.backoff_max_s <= 3600):
            raise ConfigError(f"backoff {self.backoff_s!r} s (max {self.backoff_max_s!r} s) must be >= 0 and "
                              "reasonable (at most 600 s, max 3600 s)")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_max_s, self.backoff_s * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class Attempted(Exception):
    """A call that failed for good: the last error, how many attempts were made, and whether it was transient."""

    def __init__(self, error: BaseException, attempts: int, transient: bool):
        super().__init__(str(error))
        self.error, self.attempts, self.transient = error, attempts, transient


#: GDAL's answer when the first read of a remote file fails for any reason, a 503 or a reset included: the
#: cause is lost, so the error may be the network's or the file's.
_UNRECOGNIZED_REMOTE = re.compile(r"/vsicurl/\S*'? not recognized as (being in )?a supported file format", re.I)


def maybe_transient(exc: BaseException) -> bool:
    """Whether an error that is not known to be transient may still be the network's (worth a retry).

    GDAL reports a failed first request to a remote COG (503, reset, timeout) as ``'/vsicurl/...' not
    recognized as being in a supported file format``, exactly as it reports a corrupt remote file. Retrying
    tells them apart: a network fault clears, a corrupt file fails the same way every time.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if _UNRECOGNIZED_REMOTE.search(str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def with_retries(fn: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[int, BaseException], None] | None = None,
                 retry_if: Callable[[BaseException], bool] | None = None) -> tuple[T, int]:
    """Call ``fn`` until it succeeds, retrying transient errors (:func:`is_transient`) with backoff.

    ``on_retry(attempt, error)`` is called before each retry (the caller records what was retried);
    ``retry_if(error)`` also retries errors that are not known to be transient (e.g. :func:`maybe_transient`):
    when they persist, the :class:`Attempted` raised says ``transient=False``.

    Returns:
        The result and the number of attempts made.

    Raises:
        Attempted: wrapping the last error (immediately for a non-transient one).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except Exception as e:
            transient = is_transient(e)
            retry = transient or (retry_if is not None and retry_if(e))
            if not retry or attempt > policy.retries:
                raise Attempted(e, attempt, transient) from e
            if on_retry is not None:
                on_retry(attempt, e)
            sleep(policy.delay(attempt))


__all__ = ["Attempted", "RetryPolicy", "is_transient", "maybe_transient", "with_retries"]

"""seco.collect.retry: GDAL's cause-less "not recognized" on a remote file is retried, and told apart from a
corrupt file by whether it persists (the integration test sees it happen on a real 503 / reset / stall)."""

from __future__ import annotations

import pytest

from seco.collect.retry import Attempted, RetryPolicy, maybe_transient, with_retries
from seco.errors import ReadError

REMOTE = ("cannot read band B03 of item 'S2A' from http://127.0.0.1:1/a/green.tif (RasterioIOError: "
          "'/vsicurl/http://127.0.0.1:1/a/green.tif' not recognized as being in a supported file format.)")
LOCAL = "cannot read band B03 of item 'S2A' from /data/a/green.tif (RasterioIOError: '/data/a/green.tif' not " \
        "recognized as being in a supported file format.)"
POLICY = RetryPolicy(retries=3, backoff_s=0.0)


def _flaky(fails: int, message: str):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= fails:
            raise ReadError(message)
        return "patch"

    return fn, calls


def test_a_remote_unrecognized_file_is_retried_and_recovers():
    fn, calls = _flaky(2, REMOTE)
    seen = []
    assert with_retries(fn, POLICY, sleep=lambda s: None, on_retry=lambda a, e: seen.append(a),
                        retry_if=maybe_transient) == ("patch", 3)
    assert seen == [1, 2]


def test_a_persistently_unrecognized_remote_file_is_given_up_as_not_transient():
    fn, calls = _flaky(99, REMOTE)
    with pytest.raises(Attempted) as info:
        with_retries(fn, POLICY, sleep=lambda s: None, retry_if=maybe_transient)
    assert info.value.attempts == 4 and not info.value.transient and len(calls) == 4  # -> recorded as "read"


def test_a_local_unrecognized_file_is_not_retried():
    fn, calls = _flaky(99, LOCAL)
    with pytest.raises(Attempted) as info:
        with_retries(fn, POLICY, sleep=lambda s: None, retry_if=maybe_transient)
    assert info.value.attempts == 1 and len(calls) == 1
    assert not maybe_transient(ReadError(LOCAL)) and maybe_transient(ReadError(REMOTE))

"""A local S3-compatible server on 127.0.0.1 for the object-store tests: moto in server mode.

:func:`run_moto` starts ``python -m moto.server`` bound to 127.0.0.1 on a free port (with a parent-death
signal, so it stops with the test process even on SIGKILL), creates a bucket and yields the environment a
client needs (``AWS_ENDPOINT_URL`` + dummy credentials), which both s3fs (through botocore) and subprocesses
read. Skipped when moto or s3fs is not installed (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.integration.servers import _die_with_parent, free_port, require, stop, wait_port


@contextlib.contextmanager
def run_moto(workdir: Path, bucket: str = "seco-test") -> Iterator[dict[str, str]]:
    """Yields ``{"AWS_ENDPOINT_URL": ..., credentials..., "BUCKET": bucket}`` while the server runs."""
    require(modules=("moto", "s3fs", "flask"))
    port = free_port()
    log = workdir / "moto.log"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                                env={**os.environ, **env})
    _forget_s3_clients()  # s3fs caches filesystems by arguments, not by AWS_ENDPOINT_URL: one of an earlier server
    try:
        wait_port(port, proc, "moto server", log)
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=bucket)
        yield {**env, "BUCKET": bucket}
    finally:
        stop(proc)
        _forget_s3_clients()


def _forget_s3_clients() -> None:
    """Drop s3fs's cached filesystem instances (they would keep talking to a server that has stopped)."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()

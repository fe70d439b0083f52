"""Install seco against the lowest version of every runtime dependency pyproject.toml declares, and test it.

Builds a fresh virtual environment (``.venv-lowest`` by default), installs each runtime dependency at the lower
bound of its declared range (wheels only) and seco itself (editable), checks that pip installed exactly those
versions, imports every seco module, and runs a small set of fast tests. Dependencies of the dependencies are
left to pip (the newest that fit). ``make lowest`` runs it; it is not part of ``make test`` (it takes minutes).

torch is the exception: it is installed at the version constraints.txt pins, the one CPU wheel this project's
machines hold locally (an unpinned torch from the package index is a CUDA build of gigabytes). Its lower bound
in pyproject.toml rests on the APIs seco uses, not on this check.

Usage::

    python scripts/check_lowest.py [--venv .venv-lowest] [--reuse] [-- PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Pinned in constraints.txt and installed at that version (see the module docstring).
FROM_CONSTRAINTS = ("torch",)
#: Test tools, at their constraints.txt versions.
TEST_TOOLS = ("pytest", "pytest-timeout")
DEFAULT_TESTS = ["-q", "-x", "-p", "no:cacheprovider", "-m", "not slow and not integration",
                 "tests/store", "tests/models"]
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_IMPORT_ALL = """
import importlib, pkgutil, sys, traceback
import seco
bad = []
names = ["seco"] + [m.name for m in pkgutil.walk_packages(seco.__path__, "seco.") if not m.name.endswith("__main__")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        bad.append(name)
        traceback.print_exc()
print(f"imported {len(names) - len(bad)} of {len(names)} seco modules" + (f"; failed: {bad}" if bad else ""))
import google_crc32c  # the store checks every chunk: the pure-Python fallback is far slower, and silent
if google_crc32c.implementation != "c":
    bad.append("google_crc32c (C extension)")
    print("google_crc32c runs its pure-Python fallback, not the C extension")
sys.exit(1 if bad else 0)
"""


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lowest_pins(pyproject: Path, constraints: Path) -> dict[str, str]:
    """``{name: version}``: the lower bound of each runtime dependency (torch: its constraints.txt version).

    Raises:
        SystemExit: a dependency without a ``>=`` lower bound, or torch missing from constraints.txt.
    """
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    locked = read_constraints(constraints)
    pins: dict[str, str] = {}
    for dep in deps:
        m = _REQ.match(dep)
        if m is None:
            raise SystemExit(f"cannot read the requirement {dep!r} in {pyproject}")
        name, spec = canonical(m.group(1)), m.group(3)
        if name in FROM_CONSTRAINTS:
            if name not in locked:
                raise SystemExit(f"{name} is not pinned in {constraints}; run `make constraints`")
            pins[name] = locked[name]
            continue
        low = re.search(r">=\s*([0-9][A-Za-z0-9.+!-]*)", spec)
        if low is None:
            raise SystemExit(f"{dep!r} in {pyproject} declares no lower bound (>=); give it one")
        pins[name] = low.group(1)
    return pins


def same_version(a: str, b: str) -> bool:
    """Whether two release strings name the same version (``1.26`` and ``1.26.0`` do)."""
    def norm(v: str) -> str:
        head, plus, local = v.partition("+")
        while head.endswith(".0") and head.count(".") > 0:
            head = head[:-2]
        return head + plus + local

    return norm(a) == norm(b)


def read_constraints(path: Path) -> dict[str, str]:
    """``{name: version}`` of the ``name==version`` lines of a constraints file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[canonical(name.split("[")[0])] = version.strip()
    return out


def run(cmd: list[str]) -> None:
    """Run ``cmd`` from the repository root, echoing it; stop the check when it fails."""
    print("+ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc:
        raise SystemExit(f"failed (exit {rc}): {' '.join(cmd)}")


def installed_versions(python: Path) -> dict[str, str]:
    """``{name: version}`` of every distribution in the environment of ``python``."""
    text = subprocess.check_output([str(python), "-m", "pip", "list", "--format=json"], cwd=ROOT)
    return {canonical(d["name"]): d["version"] for d in json.loads(text)}


def main() -> int:
    """Build the environment, install the lowest versions, check them, import seco and run the tests."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=ROOT / ".venv-lowest", help="environment to build (default %(default)s)")
    ap.add_argument("--reuse", action="store_true", help="install into an existing --venv instead of a fresh one")
    ap.add_argument("pytest_args", nargs="*", help=f"after --: the tests to run (default: {' '.join(DEFAULT_TESTS)})")
    a = ap.parse_args()
    venv = a.venv.resolve()
    pins = lowest_pins(ROOT / "pyproject.toml", ROOT / "constraints.txt")
    locked = read_constraints(ROOT / "constraints.txt")
    if venv.exists() and not a.reuse:
        shutil.rmtree(venv)
    if not venv.exists():
        run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    lowest = venv / "lowest-constraints.txt"
    lowest.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    tools = [f"{t}=={locked[t]}" for t in TEST_TOOLS]
    run([str(py), "-m", "pip", "install", "-q", "--only-binary=:all:", "-c", str(lowest), "-e", ".", *tools])

    have = installed_versions(py)
    print(f"\n{'dependency':<20} {'lowest':<14} installed")
    wrong = []
    for name, version in sorted(pins.items()):
        got = have.get(name, "missing")
        print(f"{name:<20} {version:<14} {got}")
        if not same_version(got, version):
            wrong.append(name)
    if wrong:
        raise SystemExit(f"pip did not install the lowest version of: {', '.join(wrong)}")
    print()
    run([str(py), "-c", _IMPORT_ALL])
    run([str(py), "-m", "pytest", *(a.pytest_args or DEFAULT_TESTS)])
    print(f"\nlowest versions: install, imports and tests passed ({venv})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

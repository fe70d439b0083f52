"""pyproject.toml's ranges, constraints.txt's exact set and the lowest-versions check agree with each other."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _check_lowest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lowest", ROOT / "scripts" / "check_lowest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_constraints_pin_every_dependency_inside_its_declared_range() -> None:
    cl = _check_lowest()
    locked = cl.read_constraints(ROOT / "constraints.txt")
    project = _project()
    extras = project["optional-dependencies"]
    for dep in [*project["dependencies"], *extras["dev"], *extras["s3"]]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in locked, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(locked[name], prereleases=True), (name, str(req.specifier), locked[name])
    assert not any(canonicalize_name(n) == "seco" for n in locked)


def test_every_runtime_dependency_has_a_lower_bound_and_no_exact_pin() -> None:
    for dep in _project()["dependencies"]:
        ops = {s.operator for s in Requirement(dep).specifier}
        assert ">=" in ops and "==" not in ops, dep


def test_lowest_pins_take_each_lower_bound_and_torch_from_the_constraints(tmp_path: Path) -> None:
    cl = _check_lowest()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["torch>=2.6", "zarr>=3.1.4,<4", "dask[distributed]>=2024.1.0", "Py_YAML >= 6.0.1"]\n'
    )
    (tmp_path / "constraints.txt").write_text("# header\ntorch==2.13.0+cpu\nzarr==3.1.6\n")
    pins = cl.lowest_pins(tmp_path / "pyproject.toml", tmp_path / "constraints.txt")
    assert pins == {"torch": "2.13.0+cpu", "zarr": "3.1.4", "dask": "2024.1.0", "py-yaml": "6.0.1"}
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["numpy<3"]\n')
    with pytest.raises(SystemExit, match="no lower bound"):
        cl.lowest_pins(tmp_path / "pyproject.toml", tmp_path / "constraints.txt")


def test_versions_compare_as_pip_reports_them() -> None:
    cl = _check_lowest()
    assert cl.same_version("1.26", "1.26.0") and cl.same_version("14", "14.0.0")
    assert cl.same_version("2.13.0+cpu", "2.13.0+cpu") and not cl.same_version("2.13.0", "2.13.0+cpu")
    assert not cl.same_version("1.26", "1.26.1") and not cl.same_version("3.1.4", "3.1.40")

"""constraints.txt: every install the project makes (``make``'s venvs, the image) takes the versions the suite
passed with, so a fresh machine runs what CI ran and not whatever a registry published since."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import DEPLOY, ROOT

CONSTRAINTS = ROOT / "constraints.txt"


def pins() -> dict[str, str]:
    """Canonical package name -> the version constraints.txt pins it to."""
    out: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and ";" not in line, f"not an exact pin: {line!r}"
        assert canonicalize_name(name) not in out, f"pinned twice: {name}"
        out[canonicalize_name(name)] = version
    return out


def requirements() -> list[Requirement]:
    """The runtime dependencies and those of the extras ``make`` installs (test, bench)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in (*project["dependencies"], *extras["test"], *extras["bench"])]


def test_every_dependency_is_pinned_within_its_range() -> None:
    """A dependency pyproject.toml names but constraints.txt leaves out would float; a pin outside the range
    pyproject.toml allows would make pip fail to resolve on a fresh machine."""
    pinned = pins()
    for requirement in requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is a dependency but not in constraints.txt (make constraints)"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pinned[name]}, outside pyproject.toml's {requirement}")


def test_this_environment_runs_the_pinned_versions() -> None:
    """The suite runs against the pins (``make`` installs with them): a venv that drifted from them is one
    this test run does not vouch for."""
    pinned = pins()
    drifted = []
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # an extra this venv does not have (bench, say)
        if name in pinned and installed != pinned[name]:
            drifted.append(f"{requirement.name} {installed} (pinned {pinned[name]})")
    assert not drifted, f"installed versions differ from constraints.txt: {drifted}; run make test to reinstall"


def test_every_install_uses_the_constraints() -> None:
    """Each ``pip install`` of the project, in the Makefile and in the image, passes constraints.txt."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^PINNED := -c constraints\.txt$", makefile, re.M)
    installs = [line for line in makefile.splitlines() if "$(PIP_INSTALL)" in line and " -e " in line]
    assert len(installs) == 3, installs  # run, test, bench
    assert all("$(PINNED)" in line for line in installs), installs
    for target in (".installed-run", ".installed-test", ".installed-bench"):
        rule = next(line for line in makefile.splitlines() if line.startswith(f"$(VENV)/{target}:"))
        assert "constraints.txt" in rule, f"{target} is not rebuilt when constraints.txt changes"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "pip install --no-compile -c constraints.txt ." in dockerfile
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, re.M)

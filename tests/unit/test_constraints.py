"""constraints.txt: the versions the tests ran, which the images install too (issue 25)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = ("operator/Dockerfile", "job_image/Dockerfile", "gateway/Dockerfile")


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact pin"
        key = canonicalize_name(name)
        assert key not in pins, f"constraints.txt pins {name} twice"
        pins[key] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return [r for r in reqs if canonicalize_name(r.name) != "videojobs"]


def test_every_dependency_is_pinned_within_pyproject_bounds() -> None:
    pins = _pins()
    assert "videojobs" not in pins, "the project itself must not be pinned"
    for req in _requirements():
        if req.marker is not None and not req.marker.evaluate():
            continue
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} (pyproject.toml) has no pin in constraints.txt"
        assert req.specifier.contains(pin, prereleases=True), (
            f"constraints.txt pins {req.name}=={pin}, outside pyproject.toml's {req}"
        )


def test_the_images_and_the_test_environment_install_from_it() -> None:
    for dockerfile in DOCKERFILES:
        text = (REPO / dockerfile).read_text()
        assert "COPY pyproject.toml constraints.txt ./" in text, dockerfile
        deps = re.findall(r"pip install[^\n]*-r requirements.txt", text)
        assert deps and all("-c constraints.txt" in i for i in deps), dockerfile
        project = re.findall(r"pip install[^\n]* \.(?: |$)", text, re.M)
        assert project and all("--no-deps" in i for i in project), dockerfile
        ignore = (REPO / f"{dockerfile}.dockerignore").read_text().splitlines()
        assert "!constraints.txt" in ignore, f"{dockerfile}.dockerignore leaves it out"
    assert "-c constraints.txt" in (REPO / ".ci" / "setup").read_text()

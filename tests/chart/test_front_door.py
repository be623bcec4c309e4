"""The front door: the README's two commands, set-up, CI, and the doc claims the code defines.

The commands themselves run for real in ``.ci/fresh-machine.sh`` (a debootstrapped Debian 12, as
root and as a user) and in the ci workflow's ``fresh-machine`` job; these tests keep the README,
``.ci/run``, the script and the workflow saying the same thing, and the numbers in the prose
equal to the code's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartkit import REPO
from tests.chart.test_render import COMBINATIONS
from videojobs.models import PERMANENT_EXIT_CODES
from videojobs.models.spec import IMMUTABLE_FIELDS

README = REPO / "README.md"
CI = REPO / ".ci"
STOCK_PACKAGES = ["python3", "python3-pip", "python3-venv", "git", "sudo", "ca-certificates"]


def _readme_commands(readme: Path = README) -> list[str]:
    out = subprocess.run(
        ["bash", str(CI / "readme-commands.sh"), str(readme)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def _workflow() -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((REPO / ".github/workflows/ci.yaml").read_text())
    return workflow


def test_readme_has_the_two_commands_and_ci_run_runs_the_test_command() -> None:
    setup_and_demo, tests = _readme_commands()
    assert setup_and_demo == "bash .ci/setup && .venv/bin/videojobs demo --out clips"
    assert tests == ".venv/bin/python -m pytest"
    run_lines = [line.strip() for line in (CI / "run").read_text().splitlines()]
    assert tests in run_lines  # exactly the README's command, on a line of its own
    assert "bash .ci/setup" in run_lines
    assert "--break-system-packages" not in (CI / "setup").read_text()


def test_readme_commands_reads_only_the_try_it_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n```bash\nnot this\n```\n## Try it: now\n\ntext\n\n```bash\n# a comment\n"
        "first one\n\n  second one\n```\n```bash\nnot this either\n```\n## Next\n"
    )
    assert _readme_commands(readme) == ["first one", "  second one"]
    readme.write_text("# nothing to try\n```bash\nls\n```\n")
    assert _readme_commands(readme) == []


def test_fresh_machine_script_and_workflow_run_the_readme_commands() -> None:
    script = (CI / "fresh-machine.sh").read_text()
    packages = re.search(r"^PACKAGES=\(([^)]*)\)$", script, re.M)
    assert packages and packages.group(1).split() == STOCK_PACKAGES
    assert ".ci/readme-commands.sh" in script and "debootstrap" in script

    job = _workflow()["jobs"]["fresh-machine"]
    assert set(job["strategy"]["matrix"]["image"]) == {"debian:12", "ubuntu:24.04"}
    users = job["strategy"]["matrix"]["user"]
    assert "root" in users and any(u != "root" for u in users)
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert " ".join(STOCK_PACKAGES) in " ".join(runs.split())
    assert "bash .ci/readme-commands.sh README.md" in runs and 'su - "$AS"' in runs


def _as_nobody() -> list[str]:
    """A prefix that runs a command as an unprivileged user (or nothing when we already are one)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop privileges")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_setup_without_root_or_sudo_names_the_debian_packages() -> None:
    # pytest's tmp_path is private to its user; this one must be readable by "nobody".
    with tempfile.TemporaryDirectory(prefix="videojobs-setup-") as tmp:
        top = Path(tmp)
        # A PATH with bash and the basics but neither ffmpeg nor shellcheck nor sudo, and a copy
        # of the script in a checkout of its own (the real one may be unreadable to nobody).
        bin_dir = top / "bin"
        bin_dir.mkdir()
        for tool in ("bash", "dirname", "id", "python3"):
            found = shutil.which(tool)
            assert found, tool
            (bin_dir / tool).symlink_to(found)
        (top / "repo" / ".ci").mkdir(parents=True)
        shutil.copy(CI / "setup", top / "repo" / ".ci" / "setup")
        for path in (top, *top.rglob("*")):
            if not path.is_symlink():
                path.chmod(0o755)
        proc = subprocess.run(
            [*_as_nobody(), str(bin_dir / "bash"), str(top / "repo" / ".ci" / "setup")],
            env={"PATH": str(bin_dir), "HOME": str(top), "LANG": "C.UTF-8"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "not root and cannot" in proc.stderr
        assert "apt-get install ffmpeg shellcheck" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (top / "repo" / ".venv").exists()  # stopped before anything else


# --- claims in the README and docs that the code defines -----------------------------------------


def test_readme_counts_the_chart_value_combinations() -> None:
    counts = re.findall(r"(\d+) value combinations", README.read_text())
    assert counts == [str(len(COMBINATIONS))]


def _code_ranges(codes: tuple[int, ...]) -> str:
    """(2, 10, 11, ..., 19) -> "2, 10–19", as the docs write them."""
    parts: list[str] = []
    run: list[int] = []
    for code in sorted(codes) + [-1]:
        if run and code == run[-1] + 1:
            run.append(code)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}")
        run = [code]
    return ", ".join(parts)


def test_permanent_exit_codes_in_the_docs_are_the_codes() -> None:
    assert _code_ranges((2, 10, 11, 12, 19, 20)) == "2, 10–12, 19–20"
    permanent = _code_ranges(PERMANENT_EXIT_CODES)
    for name in ("README.md", "docs/operator.md", "docs/resource.md", "docs/troubleshooting.md",
                 "docs/worker-contract.md"):  # fmt: skip
        text = " ".join((REPO / name).read_text().split())
        claims = re.findall(r"((?:\d+(?:, | and | or ))*\d+[–-]19(?:(?:, | and | or )\d+)*)", text)
        assert claims, f"{name} no longer lists the permanent exit codes"
        for claim in claims:
            normal = re.sub(r" (?:and|or) ", ", ", claim).replace("-", "–")
            assert normal == permanent, f"{name}: {claim!r} is not {permanent!r}"


def test_readme_lists_the_immutable_spec_fields_of_the_crd() -> None:
    crd = yaml.safe_load((REPO / "crds/videoprocessingjobs.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # one transition rule over the whole spec names every immutable field (has() on both sides)
    transition = [r["rule"] for r in spec["x-kubernetes-validations"] if "oldSelf" in r["rule"]]
    immutable = [
        name
        for name in spec["properties"]
        if any(f"oldSelf.{name}" in rule for rule in transition)
        and not any(f"oldSelf.{name}" in r and "cancel" in r for r in transition)
    ]
    assert immutable == list(IMMUTABLE_FIELDS)
    text = " ".join(README.read_text().split())
    match = re.search(r"((?:`\w+`(?:, | and )?)+) are immutable", text)
    assert match, "README no longer says which fields are immutable"
    assert re.findall(r"`(\w+)`", match.group(1)) == immutable


def test_operator_doc_quotes_the_benchmark_time() -> None:
    bench = (REPO / "docs/benchmarks.md").read_text()
    measured = re.search(r"time until all 200 are `Succeeded`[^|]*\| ([\d.]+) s", bench)
    assert measured
    operator_doc = " ".join((REPO / "docs/operator.md").read_text().split())
    quoted = re.search(r"200 runs finish in (?:about )?([\d.]+) s", operator_doc)
    assert quoted and quoted.group(1) == measured.group(1)

"""``videojobs --version`` and ``videojobs serve``'s refusals: one clear line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from videojobs import __version__


def _videojobs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videojobs_cli", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_version() -> None:
    done = _videojobs("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"videojobs {__version__}", done


def test_serve_apikey_without_a_keys_file_names_the_flag_and_the_variable(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_GATEWAY_")}
    done = _videojobs("serve", "--auth", "apikey", "--data", str(tmp_path / "d"), env=env)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert "--api-keys" in done.stderr and "VIDEOJOBS_GATEWAY_API_KEYS_FILE" in done.stderr
    missing = tmp_path / "nope.yaml"
    done = _videojobs(
        "serve", "--auth", "apikey", "--api-keys", str(missing), "--data", str(tmp_path / "d"),
        env=env,
    )  # fmt: skip
    assert done.returncode == 2 and f"{missing}: no such file" in done.stderr, done
    bad = tmp_path / "keys.yaml"
    bad.write_text("just words\n")
    done = _videojobs(
        "serve", "--auth", "apikey", "--api-keys", str(bad), "--data", str(tmp_path / "d"),
        "--port", "0", env=env,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done
    assert done.stderr.startswith("videojobs serve: "), done.stderr
    helptext = _videojobs("serve", "--help").stdout
    assert "--api-keys" in helptext and "VIDEOJOBS_GATEWAY_API_KEYS_FILE" in helptext


def test_serve_help_and_readme_say_jobs_run_one_at_a_time_by_default() -> None:
    """Issue 26, item 6: ``--help`` and the README tell the default and how to change it."""
    import re

    done = _videojobs("serve", "--help")
    assert done.returncode == 0, done
    text = " ".join(done.stdout.split())
    assert "--concurrency N" in text and "default 1: one at a time" in text, text
    assert "queue position" in text
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert "a few at a time" not in readme
    assert re.search(r"one at a time by default .*`--concurrency N` runs N at once", readme)

"""Regenerate what the chart and its docs derive from the operator's Python sources.

- ``charts/videojobs/files/rbac.yaml``: the rules of ``videojobs_operator.rbac`` as data. The
  chart cannot import Python, so its templates render every Role and ClusterRole from this file.
- The reference tables in ``docs/configuration.md`` (between ``<!-- generated:... -->`` markers):
  every chart value with its default and comment from ``values.yaml``, and every
  ``VIDEOJOBS_*`` variable from ``videojobs_operator.settings``.

``tests/chart`` fails when either is stale: run ``python3 charts/tools/sync_chart.py``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from videojobs_operator import rbac
from videojobs_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "videojobs"
RBAC_FILE = CHART / "files" / "rbac.yaml"
CONFIG_DOC = REPO / "docs" / "configuration.md"
PIPE = "\\|"

HEADER = """\
# Generated from operator/videojobs_operator/rbac.py by charts/tools/sync_chart.py.
# Do not edit: change rbac.py and run `python3 charts/tools/sync_chart.py`.
"""


def render_rbac() -> str:
    """The rules file's text: the four rule sets of ``rbac.py``, keyed by role."""
    data = {
        "operator": rbac.OPERATOR_RULES,
        "workerRbac": rbac.WORKER_RBAC_RULES,
        "leaderElection": rbac.LEADER_ELECTION_RULES,
        "worker": rbac.WORKER_RULES,
    }
    return HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def camel(field: str) -> str:
    """A settings field's chart key: ``max_running_jobs`` -> ``maxRunningJobs``."""
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def values_comments(text: str) -> list[tuple[str, str]]:
    """(dotted key, comment) for every key of values.yaml, in file order.

    A key's comment is the block of ``#`` lines right above it; ``-- `` (helm-docs style)
    is dropped.
    """
    found: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^( *)([A-Za-z0-9_.-]+):", line)
        if not match:
            comment = []
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        text_ = " ".join(comment)
        text_ = text_[3:] if text_.startswith("-- ") else text_
        found.append((".".join(k for _, k in stack), text_))
        comment = []
    return found


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def _cell(value: Any) -> str:
    return "`" + json.dumps(value) + "`" if not isinstance(value, str) else f'`"{value}"`'


def render_values_table() -> str:
    """Markdown table of every chart value that is a leaf (or a free-form object)."""
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    entries = values_comments(text)
    comments = dict(entries)
    rows = ["| value | default | description |", "| --- | --- | --- |"]
    whole: list[str] = []  # objects documented as one value (probes, security contexts)
    for key, comment in entries:
        if any(key.startswith(parent + ".") for parent in whole):
            continue
        value = _lookup(values, key)
        children = [k for k in comments if k.startswith(key + ".")]
        if children and any(comments[k] for k in children):
            continue  # a section: its keys have their own rows
        if children:
            whole.append(key)
        description = comment.replace("|", PIPE) or "(see the section above)"
        rows.append(f"| `{key}` | {_cell(value)} | {description} |")
    return "\n".join(rows) + "\n"


def render_env_table() -> str:
    """Markdown table of every operator setting: env var, chart value, default, meaning."""
    rows = [
        "| environment variable | chart value | default | description |",
        "| --- | --- | --- | --- |",
    ]
    defaults = OperatorSettings.model_construct().model_dump(mode="json")
    for field, info in OperatorSettings.model_fields.items():
        default = defaults[field]
        if isinstance(default, list):
            default = ",".join(default)
        if default is None:
            shown = "unset"
        elif isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        else:
            shown = f"`{default}`" if default != "" else '`""`'
        description = (info.description or "").replace("|", PIPE)
        rows.append(
            f"| `VIDEOJOBS_{field.upper()}` | `operator.config.{camel(field)}` | {shown} | "
            f"{description} |"
        )
    return "\n".join(rows) + "\n"


def replace_section(doc: str, name: str, body: str) -> str:
    """Replace the text between ``<!-- generated:NAME:start -->`` and ``...:end -->``."""
    start, end = f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"
    before, found, rest = doc.partition(start)
    if not found:
        raise SystemExit(f"{CONFIG_DOC}: marker {start} is missing")
    _, found, after = rest.partition(end)
    if not found:
        raise SystemExit(f"{CONFIG_DOC}: marker {end} is missing")
    return f"{before}{start}\n{body}{end}{after}"


def render_config_doc() -> str:
    """docs/configuration.md with its generated tables brought up to date."""
    doc = CONFIG_DOC.read_text()
    doc = replace_section(doc, "values", render_values_table())
    return replace_section(doc, "env", render_env_table())


def _write(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    if old != text:
        path.write_text(text)
        print(f"updated {path.relative_to(REPO)}")
    else:
        print(f"{path.relative_to(REPO)} is up to date")


def main() -> int:
    """Write the rules file and the configuration tables."""
    _write(RBAC_FILE, render_rbac())
    _write(CONFIG_DOC, render_config_doc())
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Print the README's "Try it" commands, one a line, exactly as written: the lines of the first
# ```bash block after the "## Try it" heading that are neither comments nor blank.
#   bash .ci/readme-commands.sh [README.md]
# Used by .ci/fresh-machine.sh and the ci workflow's fresh-machine job, so that both run what a
# reader would type; tests/chart/test_ci_files.py checks .ci/run against it.
set -euo pipefail
readme=${1:-"$(dirname "$0")/../README.md"}
awk '/^## Try it/ {s = 1; next}
     s && /^## / {exit}
     s && /^```bash/ {b = 1; next}
     b && /^```/ {exit}
     b && !/^[[:space:]]*(#|$)/ {print}' "$readme"

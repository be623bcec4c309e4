"""``python -m videojobs_cli``: the ``videojobs`` command."""

import sys

from videojobs_cli.main import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m selflow``: the same CLI as the ``selflow`` console script, for when it is not on PATH."""

from __future__ import annotations

from selflow.cli import main

if __name__ == "__main__":
    main()

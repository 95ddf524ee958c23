"""Shared by the template checks in scripts/ (run by scripts/check-templates):
one way to report what a check found, so every check prints and exits alike.
"""

from __future__ import annotations

import sys


def report(heading: str, problems: list[str], ok: str) -> int:
    """Lists `problems` under `heading` on stderr and returns 1, or prints
    `ok` and returns 0 when there is none (the check's exit code)."""
    if problems:
        print(heading, file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(ok)
    return 0

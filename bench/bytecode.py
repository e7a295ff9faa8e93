"""Byte-compile our source trees before a bench times them, as an install would.

A wheel's modules are compiled when pip installs them; ours live in an editable tree, and
PYTHONDONTWRITEBYTECODE (set on some machines, this one included) would have every timed run
compile every module it imports from source: tens of milliseconds of a run that is meant to
take tens of milliseconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def compile_ours(*extra: Path) -> None:
    """Compile cli.py and every package of ours (not tests or bench), and `extra` trees."""
    trees = [REPO / "cli.py", *(init.parent for init in sorted(REPO.glob("*/__init__.py"))
                                if init.parent.name not in ("tests", "bench"))]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, [*trees, *extra])],
                   check=True)

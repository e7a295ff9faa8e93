"""The machine a bench ran on: cores, CPU model, memory, load, Python, in one line and as JSON.

A ratio measured in one run holds across machines only roughly: a faster or slower machine
(or one whose cores were busy) must show as such next to the figures of record.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('unknown' where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def machine_doc() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(memory_gib(), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def machine_line() -> str:
    doc = machine_doc()
    return (f"machine: {doc['cores']} cores, {doc['cpu']}, {doc['memory_gib']:.0f} GiB, "
            f"Python {doc['python']}, {doc['system']}; load average "
            + " ".join(f"{x:.2f}" for x in doc["load_average"]))

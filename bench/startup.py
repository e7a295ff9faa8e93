"""Benchmark: how soon `cdnpack --help` and every subcommand's `--help` answer (issue 25: each
under 0.15 s), each a fresh process of the installed console script, timed `--runs` times with
the commands interleaved; the anchor, timed in the same rounds, is the bare interpreter of the
same environment (`python -c pass`): the floor no Python command starts under, which shows how
fast the machine itself was. Medians of wall and CPU (user + system, wait4) per command.

Usage: .venv/bin/python -m bench.startup [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.bytecode import compile_ours
from bench.encrypt import Run, timed
from bench.machine import machine_doc, machine_line

GOAL = 0.15
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    compile_ours()
    script = Path(sys.executable).parent / "cdnpack"
    jobs: dict[str, list[str | Path]] = {"python -c pass (anchor)": [sys.executable, "-c", "pass"]}
    # The command list comes from the CLI itself, asked in a process of its own (the bench
    # imports no CLI module: tests/test_architecture.py).
    listed = subprocess.run([sys.executable, "-c", "import cli, json; "
                             "print(json.dumps(cli.command_paths()))"],
                            capture_output=True, text=True, check=True, cwd=ROOT).stdout
    for path in json.loads(listed):
        jobs[" ".join(("cdnpack", *path, "--help"))] = [script, *path, "--help"]
    before = machine_line()
    runs: dict[str, list[Run]] = {name: [] for name in jobs}
    for _ in range(options.runs):
        for name, args in jobs.items():
            runs[name].append(timed(args))
    rows = {name: {"wall": statistics.median(r.seconds for r in rs),
                   "cpu": statistics.median(r.cpu_seconds for r in rs),
                   "best": min(r.seconds for r in rs)} for name, rs in runs.items()}
    anchor = rows["python -c pass (anchor)"]
    commands = {k: v for k, v in rows.items() if k.startswith("cdnpack")}
    slowest = max(commands, key=lambda k: commands[k]["wall"])
    doc: dict[str, Any] = {
        "machine": machine_doc(), "runs": options.runs, "goal_seconds": GOAL,
        "commands": rows, "slowest": slowest, "slowest_wall": commands[slowest]["wall"],
        "slowest_over_anchor": commands[slowest]["wall"] / anchor["wall"],
        "met": all(v["wall"] < GOAL for v in commands.values()),
    }
    if options.json:
        print(json.dumps(doc, indent=2))
        return
    print(before)
    print(f"\n{'command':<34}{'wall median s':>14}{'best':>8}{'CPU median s':>14}"
          f"{'/ anchor':>10}")
    for name, row in rows.items():
        print(f"{name:<34}{row['wall']:>14.3f}{row['best']:>8.3f}{row['cpu']:>14.3f}"
              f"{row['wall'] / anchor['wall']:>10.2f}")
    print(f"\nafter: {machine_line()}")
    print(f"slowest: {slowest}, {doc['slowest_wall']:.3f} s median "
          f"({doc['slowest_over_anchor']:.2f}x the bare interpreter); goal: every --help under "
          f"{GOAL} s: {'met' if doc['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()

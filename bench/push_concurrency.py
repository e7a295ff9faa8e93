"""Time `cdnpack push` at several --concurrency values, paired, on loopback or through a delay.

The same release and moto as bench/push.py; one first push per value per repetition, the order
rotating, moto reset before each. It answers what the default concurrency should be: on
loopback the endpoint's own work decides, at a distance the number of requests in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from bench.push import BUCKET, make_release, positive, positive_int, timed
from testbed.delay import DelayProxy
from testbed.origin import FAKE_CREDENTIALS
from testbed.origin import local_origin as moto_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=lambda s: [positive_int(v) for v in s.split(",")],
                        default=[16, 32, 64], help="comma-separated, e.g. 16,32,64")
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--rtt", type=positive, help="milliseconds of round trip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    values: list[int] = args.values
    cdnpack = Path(sys.executable).parent / "cdnpack"
    env = {**os.environ, **FAKE_CREDENTIALS}
    times: dict[int, list[float]] = {v: [] for v in values}
    with (tempfile.TemporaryDirectory(prefix="cdnpack-conc-bench-") as tmp,
          moto_server() as moto,
          DelayProxy(moto.url, args.rtt / 1000) if args.rtt else nullcontext() as proxy):
        endpoint = proxy.url if proxy else moto.url
        root = Path(tmp) / "release"
        make_release(root, 2000, seed=1)
        s3 = moto.client()
        for rep in range(args.repeat):
            for value in values[rep % len(values):] + values[:rep % len(values)]:
                moto.reset()
                s3.create_bucket(Bucket=BUCKET)
                time.sleep(1)
                wall, _ = timed([str(cdnpack), "push", str(root), f"s3://{BUCKET}/c{value}",
                                 "--endpoint-url", endpoint, "--json",
                                 "--concurrency", str(value)], env)
                times[value].append(wall)
    medians = {v: statistics.median(t) for v, t in times.items()}
    if args.json:
        print(json.dumps({"rtt_ms": args.rtt or 0, "seconds": {
            str(v): {"median": medians[v], "runs": times[v]} for v in values}}, indent=2))
        return
    where = f"through {args.rtt:g} ms of round trip" if args.rtt else "on loopback"
    print(f"cdnpack push, first push of 1,992 objects {where}, median of {args.repeat}")
    for v in values:
        print(f"--concurrency {v:<4} {medians[v]:6.2f} s   "
              + " ".join(f"{t:.2f}" for t in times[v]))


if __name__ == "__main__":
    main()

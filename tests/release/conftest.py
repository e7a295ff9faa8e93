"""Short titles for the catalog tests, and catalog files written for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.clips import ClipSpec, make_clip
from tests.cluster.conftest import dask_env

__all__ = ["dask_env"]  # the real cluster's environment, shared with tests/cluster

#: Short and small: a title's release costs a few seconds of a 2-core machine.
SHORT = ClipSpec(duration=3.0, width=320, height=180, frame_rate="25")


@pytest.fixture(scope="session")
def short_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("catalog-clips")
    return [make_clip(d / f"title-{i}.mp4", SHORT) for i in range(3)]


def write_catalog(path: Path, titles: list[dict[str, object]], **defaults: Any) -> Path:
    doc = {"defaults": {"ladder": "compact", "segment_duration": 1,
                        "destination": "s3://origin/catalog/{id}", **defaults},
           "titles": titles}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def outcome(stdout: str) -> dict[str, str]:
    """title id -> state, from `catalog run --json`."""
    return {t["id"]: t["state"] for t in json.loads(stdout)["titles"]}

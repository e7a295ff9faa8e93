"""What a release holds, as a release engineer checks it before pushing: its manifests, and each
rendition's measured quality when release.json records one.

release.json is read through `read_release` (checked field by field: a damaged file is one line,
exit 2). Measured quality is read beside it, leniently: a release packaged before quality was
measured has none, and the names are the measuring stage's (VMAF mean, 5th-percentile frame,
model), so the preview takes what it recognises and ignores the rest rather than refusing a
release it could play.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.output.release import RELEASE_NAME, Release, read_release

#: Where each format's top manifest is, by its role in release.json.
TOP_ROLES = {"hls": "multivariant", "dash": "mpd"}
#: Field names taken for each measure, lower-cased: the measure's own name first.
_MEAN = ("vmaf", "vmaf_mean", "mean", "mean_vmaf")
_P5 = ("vmaf_p5", "p5", "vmaf_5th", "5th", "percentile_5", "vmaf_percentile_5", "p5_vmaf")
_MODEL = ("vmaf_model", "model", "model_name")


@dataclass(frozen=True)
class Quality:
    """A rendition's measured quality (libvmaf scores, 0-100)."""

    vmaf: float | None = None  # mean over the frames
    vmaf_p5: float | None = None  # the 5th-percentile frame: what the worst moments look like
    model: str | None = None


@dataclass(frozen=True)
class Contents:
    root: Path
    release: Release
    #: Format ("hls", "dash") -> the release path of its top manifest.
    manifests: dict[str, str]
    #: Rendition id -> measured quality; renditions without one are absent.
    quality: dict[str, Quality]

    @property
    def paths(self) -> frozenset[str]:
        """Every file the release lists: the only files a preview serves."""
        return frozenset(f.path for f in self.release.files)


def read_contents(root: Path) -> Contents:
    """The release at `root`: refused in one line when it is not one."""
    if not root.is_dir():
        raise InputError(f"{root}: not a directory (a release directory is expected)")
    release = read_release(root)
    manifests = {}
    for fmt, role in TOP_ROLES.items():
        top = [f.path for f in release.files if f.role == role]
        if top:  # the writers name one per format; more would be an older layout's
            manifests[fmt] = min(top, key=lambda p: (p.count("/"), p))
    if not manifests:
        raise InputError(f"{root / RELEASE_NAME}: lists no multivariant playlist or MPD")
    raw = json.loads((root / RELEASE_NAME).read_text())  # read_release has checked it
    quality = {}
    for doc in raw.get("renditions", []):
        measured = quality_of(doc)
        if measured is not None:
            quality[str(doc["id"])] = measured
    return Contents(root, release, manifests, quality)


def quality_of(rendition: Mapping[str, Any]) -> Quality | None:
    """The measured quality in one rendition's release.json object, if any: flat fields
    (`vmaf`, `vmaf_p5`, `vmaf_model`) or an object under `vmaf` or `quality` (`mean`, `p5`,
    `model`). A value that is not a score (a string, NaN, out of 0-100) is left out."""
    fields: dict[str, Any] = {}
    for key, value in rendition.items():
        name = key.lower()
        if isinstance(value, Mapping) and (name in ("vmaf", "quality")):
            fields.update({k.lower(): v for k, v in value.items() if isinstance(k, str)})
        elif "vmaf" in name:
            fields[name] = value
    found = Quality(_first_score(fields, _MEAN), _first_score(fields, _P5),
                    next((str(fields[k]) for k in _MODEL if isinstance(fields.get(k), str)),
                         None))
    return None if found == Quality() else found


def _first_score(fields: Mapping[str, Any], names: tuple[str, ...]) -> float | None:
    for name in names:
        value = fields.get(name)
        if (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value) and 0 <= value <= 100):
            return float(value)
    return None

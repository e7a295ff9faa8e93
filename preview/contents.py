"""What a release holds, as a release engineer checks it before pushing: its manifests, and each
rendition's measured quality when release.json records one.

release.json is read through `read_release` (checked field by field: a damaged file is one line,
exit 2); a rendition's VMAF is its `vmaf` (absent for --copy, --no-vmaf and releases packaged
before quality was measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packager.errors import InputError
from packager.output.release import RELEASE_NAME, Release, read_release

#: Where each format's top manifest is, by its role in release.json.
TOP_ROLES = {"hls": "multivariant", "dash": "mpd"}


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
    quality = {r.id: Quality(r.vmaf.mean, r.vmaf.p5, r.vmaf.model)
               for r in release.renditions if r.vmaf is not None}
    return Contents(root, release, manifests, quality)


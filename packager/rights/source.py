"""Rights to check or draw: a packaged release's (release.json, resolved as packaged) or a
title file's (resolved against the regions now)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from packager.errors import InputError
from packager.output.release import RELEASE_NAME, read_release
from packager.rights.file import load_rights
from packager.rights.model import Rights
from packager.rights.summary import release_rights
from packager.rights.territories import RegionCountries


def read_rights(path: Path, regions: Callable[[], RegionCountries]) -> Rights:
    """RELEASE_DIR (or its release.json) or TITLE.yaml."""
    if path.is_dir() or path.name == RELEASE_NAME:
        root = path if path.is_dir() else path.parent
        rights = release_rights(read_release(root), str(root / RELEASE_NAME))
        if not rights.grants:
            raise InputError(f"{root}: the release has no rights (it plays everywhere): "
                             "package it with --rights to license it")
        return rights
    return load_rights(path, regions())


def title_name(path: Path) -> str:
    """How a report names the title: the release directory's name, else the file's stem."""
    return (path if path.is_dir() else path.parent).name if (
        path.is_dir() or path.name == RELEASE_NAME) else path.stem

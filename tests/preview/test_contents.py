"""What the preview reads of a release: its manifests, and each rendition's measured quality when
release.json has one, none when it has not;
what is not a release is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from packager.errors import InputError
from packager.output.pipeline import PackageResult
from packager.output.release import RELEASE_NAME
from preview.contents import Quality, read_contents
from preview.summary import LOCAL, Preview, page_doc


def test_a_release_without_measured_quality_shows_none(packaged: PackageResult) -> None:
    contents = read_contents(packaged.output)
    assert contents.manifests == {"hls": "master.m3u8", "dash": "manifest.mpd"}
    assert contents.quality == {}
    doc = page_doc(Preview(contents, None, None, (), LOCAL))
    videos = doc["renditions"]["video"]
    assert [v["quality"] for v in videos] == [None] * len(videos)
    assert [v["bandwidth"] for v in videos] == sorted((v["bandwidth"] for v in videos),
                                                      reverse=True)
    assert doc["protection"] is None
    assert doc["steering"] is None
    assert set(doc["sources"]) == {LOCAL}


def test_measured_quality_in_release_json_reaches_the_page(packaged: PackageResult,
                                                           tmp_path: Path) -> None:
    """As the quality stage writes it (release.json's renditions[].vmaf)."""
    root = tmp_path / "release"
    shutil.copytree(packaged.output, root)
    doc = json.loads((root / RELEASE_NAME).read_text())
    videos = [r for r in doc["renditions"] if r["kind"] == "video"]
    assert len(videos) >= 2
    for i, rendition in enumerate(videos):
        rendition["vmaf"] = {"mean": 90.0 + i, "p5": 80.0 + i, "model": "vmaf_v0.6.1",
                             "frames": 150}
    (root / RELEASE_NAME).write_text(json.dumps(doc))
    contents = read_contents(root)
    assert contents.quality == {r["id"]: Quality(90.0 + i, 80.0 + i, "vmaf_v0.6.1")
                                for i, r in enumerate(videos)}
    shown = {v["id"]: v["quality"] for v in
             page_doc(Preview(contents, None, None, (), LOCAL))["renditions"]["video"]}
    assert shown == {r["id"]: {"vmaf": 90.0 + i, "vmaf_p5": 80.0 + i, "model": "vmaf_v0.6.1"}
                     for i, r in enumerate(videos)}


def test_what_is_not_a_release_is_one_line(packaged: PackageResult, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        read_contents(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"no release\.json; not a cdnpack release"):
        read_contents(tmp_path)
    root = tmp_path / "damaged"
    shutil.copytree(packaged.output, root)
    text = (root / RELEASE_NAME).read_text()
    (root / RELEASE_NAME).write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match="not JSON"):
        read_contents(root)

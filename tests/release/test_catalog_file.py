"""A catalog file is read whole before anything starts: defaults apply, paths are the file's,
and every mistake is one line naming file:line: field (exit 2 from the command line)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cdn.s3 import S3Location
from packager.errors import InputError
from release.catalog_file import load_catalog
from tests.conftest import cdnpack_cli


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "masters").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "masters" / name).write_bytes(b"\0" * 16)
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "catalog.yaml"
    path.write_text(text)
    return path


def test_defaults_apply_and_paths_are_the_catalog_s(folder: Path) -> None:
    catalog = load_catalog(write(folder, """\
defaults:
  ladder: compact
  encrypt: cbcs
  codecs: [h264, av1]
  destination: s3://origin/catalog/{id}
titles:
  - id: ep1
    source: masters/a.mp4
  - id: ep2
    source: s3://mezzanine/ep2.mov
    encrypt: none
    chunks: 4
    destination: s3://other/films/{id}/v2
"""))
    ep1, ep2 = catalog.titles
    assert ep1.source == str(folder / "masters" / "a.mp4")
    assert (ep1.ladder, ep1.encrypt, ep1.codecs, ep1.chunks) == ("compact", "cbcs",
                                                               ("h264", "av1"), "auto")
    assert ep1.destination == S3Location("origin", "catalog/ep1")
    assert (ep2.source, ep2.remote_source, ep2.encrypt, ep2.chunks) == (
        "s3://mezzanine/ep2.mov", True, None, "4")
    assert ep2.destination == S3Location("other", "films/ep2/v2")
    assert ep1.options() != ep2.options()


#: A catalog's head: a destination for every title; then its titles.
HEAD = "defaults:\n  destination: s3://origin/{id}\n"
ONE = "titles:\n  - id: ep1\n    source: masters/a.mp4\n"


@pytest.mark.parametrize(("text", "message"), [
    ("titles:\n  - id: ep1\n    source: masters/a.mp4\n    destination: s3://origin/c/{id}\n"
     "  - id: ep1\n    source: masters/b.mp4\n    destination: s3://origin/d/{id}\n",
     r"catalog.yaml:5: titles\[1\].id: 'ep1' is also the id of titles\[0\] \(line 2\)"),
    (HEAD + ONE + "    ladderr: compact\n",
     r"catalog.yaml:6: titles\[0\].ladderr: unknown field \(allowed: chunks, codecs,"),
    ("defaults:\n  destinaton: s3://origin/c\n" + ONE,
     r"catalog.yaml:2: defaults.destinaton: unknown field"),
    (HEAD + "titles:\n  - id: ep1\n    source: masters/nope.mp4\n",
     r"catalog.yaml:5: titles\[0\].source: .*masters/nope.mp4: no such file"),
    (ONE + "    destination: s3://origin\n",
     r"catalog.yaml:4: titles\[0\].destination: needs a prefix per title"),
    (ONE, r"catalog.yaml:2: titles\[0\].destination: missing \(here or in defaults\)"),
    ("defaults:\n  destination: s3://origin/c\n" + ONE
     + "  - id: ep2\n    source: masters/b.mp4\n",
     r"catalog.yaml:6: titles 'ep1' and 'ep2' would both publish at s3://origin/c"),
    (HEAD + "  encrypt: aes\n" + ONE, r"catalog.yaml:3: defaults.encrypt: must be one of cenc"),
    (HEAD + "  codecs: [vp9]\n" + ONE, r"catalog.yaml:3: defaults.codecs: unknown codec 'vp9'"),
    (HEAD + ONE + "    chunks: 0\n",
     r"catalog.yaml:6: titles\[0\].chunks: must be auto or a count >= 1"),
    (HEAD + "titles:\n  - id: ep 1\n    source: masters/a.mp4\n",
     r"catalog.yaml:4: titles\[0\].id: 'ep 1' must match"),
    (HEAD + "  keys: raw\n" + ONE,
     r"catalog.yaml:3: defaults.keys: must be generate, cpix:FILE or speke:URL"),
    ("titles: []\n", r"catalog.yaml:1: titles: must be a non-empty list"),
])
def test_a_mistake_is_one_line_naming_file_line_and_field(folder: Path, text: str,
                                                         message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_catalog(write(folder, text))


@pytest.mark.parametrize(("content", "message"), [
    (os.urandom(4096), r"catalog.yaml"),
    (b"titles:\n  - id: ep1\n    source: masters/a.mp4\n    destination: s3://origin/c/{id}\n"
     b"  - id: ep1\n    source: masters/b.mp4\n    destination: s3://origin/d/{id}\n",
     r"catalog.yaml:5: titles\[1\].id: 'ep1' is also the id of titles\[0\]"),
    ((HEAD + ONE + "    probes: true\n").encode(),
     r"catalog.yaml:6: titles\[0\].probes: unknown field"),
    ((HEAD + "titles:\n  - id: ep1\n    source: nope.mov\n").encode(),
     r"catalog.yaml:5: titles\[0\].source: .*nope.mov: no such file"),
], ids=["random bytes", "duplicate ids", "unknown key", "missing source"])
@pytest.mark.slow
def test_bad_catalogs_are_one_line_exit_2_from_the_command_line(
        folder: Path, content: bytes, message: str) -> None:
    path = folder / "catalog.yaml"
    path.write_bytes(content)
    done = cdnpack_cli("catalog", "run", path, "--endpoint-url", "http://127.0.0.1:9")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("cdnpack: error: ")
    assert re.search(message, done.stderr), done.stderr


def test_a_title_file_s_rights_are_read_with_the_title(folder: Path) -> None:
    (folder / "ep1.yaml").write_text(
        "rights:\n  - {id: jp, territories: [JP], start: 2025-03-01T00:00:00Z}\n")
    (folder / "ep2.yaml").write_text(
        "rights:\n  - {id: xx, territories: [XX], start: 2025-03-01T00:00:00Z}\n")
    catalog = write(folder, HEAD + ONE + "    title: ep1.yaml\n")
    [ep1] = load_catalog(catalog).titles
    assert ep1.rights is not None
    assert [g.id for g in ep1.rights.grants] == ["jp"]
    with pytest.raises(InputError, match=r"catalog.yaml:6: titles\[0\].title: .*ep2.yaml"):
        load_catalog(write(folder, HEAD + ONE + "    title: ep2.yaml\n"))

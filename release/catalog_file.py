"""A catalog file: the titles to release, each with its source, options and destination.

    defaults:                          # every title's, unless it says otherwise
      ladder: default                  # a preset or a ladder file
      codecs: [h264, av1]              # default: the ladder's
      encrypt: cbcs                    # cenc | cbcs | none
      keys: generate                   # generate | cpix:FILE | speke:URL (stored in the keystore)
      drm: widevine,playready,fairplay
      chunks: auto                     # auto | N (chunks of whole segments on the cluster)
      segment_duration: 4
      formats: [hls, dash]
      destination: s3://origin/catalog/{id}   # {id}: the title's id
    titles:
      - id: ep101
        source: s3://mezzanine/ep101.mov      # or a path, relative to this file
        title: titles/ep101.yaml              # languages, side files, rights (packager/title)
      - id: film-7
        source: masters/film-7.mxf
        ladder: ladders/film.yaml
        probe: {config: regions.yaml, regions: [eu-west, sa-east]}   # release gated on probes

Everything is checked before any title starts: an unknown field, a duplicate id, a local file
that is not there: one line naming file:line: field (packager/yamlfile.py), exit 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdn.s3 import S3Location, parse_s3_url
from packager.drm.systems import SCHEMES, parse_systems
from packager.encoding.codecs import CODECS
from packager.encoding.ladder import PRESETS, load_ladder
from packager.errors import InputError
from packager.output.release import FORMATS
from packager.rights.file import rights_for
from packager.rights.model import Rights
from packager.title.file import resolve_title
from packager.title.model import Title
from packager.yamlfile import LineMapping, Reader, load_yaml
from probes.config import default_config_path, load_config

#: Title ids name S3 prefixes and keystore content ids: letters, digits, dot, dash, underscore.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_OPTIONS = {"ladder", "codecs", "encrypt", "keys", "drm", "per_class", "chunks",
            "segment_duration", "formats", "destination", "probe"}
_TITLE_FIELDS = {"id", "source", "title", *_OPTIONS}
_PROBE_FIELDS = {"config", "regions"}


@dataclass(frozen=True)
class ProbeGate:
    """`probe:` — stage the title, probe it through every CDN, publish only if budgets hold
    (as `cdnpack release`); None: publish after push's own verification."""

    config: Path | None  # None: the shipped regions.yaml
    regions: tuple[str, ...]


@dataclass(frozen=True)
class TitleSpec:
    id: str
    source: str  # an absolute path, or s3://BUCKET/KEY
    title_file: Path | None
    title: Title  # its languages and side files, resolved and checked
    ladder: str  # a preset name, or an absolute ladder file path
    codecs: tuple[str, ...] | None  # None: the ladder's own
    encrypt: str | None  # cenc | cbcs; None: clear
    keys: str
    drm: str | None
    per_class: bool
    chunks: str  # "auto" or a count
    segment_duration: float
    formats: tuple[str, ...]
    destination: S3Location
    probe: ProbeGate | None
    line: int  # where the title starts in the catalog file
    rights: Rights | None = None  # the title file's `rights:`; None: unrestricted

    @property
    def remote_source(self) -> bool:
        return self.source.startswith("s3://")

    def options(self) -> dict[str, Any]:
        """The options that shape the release (recorded in release.json, release/inputs.py)."""
        return {"ladder": self.ladder, "codecs": list(self.codecs or ()), "encrypt": self.encrypt,
                "keys": self.keys if self.encrypt else None, "drm": self.drm,
                "per_class": self.per_class, "chunks": self.chunks,
                "segment_duration": self.segment_duration, "formats": list(self.formats),
                "title": self.title_file is not None}


@dataclass(frozen=True)
class Catalog:
    path: Path
    titles: tuple[TitleSpec, ...]


def load_catalog(path: Path) -> Catalog:
    doc = load_yaml(path, "catalog")
    r = Reader(path)
    r.unknown(doc, "", {"defaults", "titles"})
    defaults = r.mapping(doc, "defaults", "defaults", required=False)
    r.unknown(defaults, "defaults", _OPTIONS)
    items = r.items(doc, "titles", "titles")
    seen: dict[str, tuple[int, int]] = {}
    titles = []
    for index, item in enumerate(items):
        name = f"titles[{index}]"
        r.unknown(item, name, _TITLE_FIELDS)
        spec = _title(r, path.parent, item, defaults, name)
        if spec.id in seen:
            first, line = seen[spec.id]
            raise r.fail(item, "id", f"{name}.id",
                         f"{spec.id!r} is also the id of titles[{first}] (line {line})")
        seen[spec.id] = (index, item.lines.get("id", item.line))
        titles.append(spec)
    destinations: dict[str, str] = {}
    for spec in titles:
        where = str(spec.destination)
        if where in destinations:
            raise InputError(f"{path}:{spec.line}: titles {destinations[where]!r} and "
                             f"{spec.id!r} would both publish at {where}")
        destinations[where] = spec.id
    return Catalog(path, tuple(titles))


def _title(r: Reader, base: Path, item: LineMapping, defaults: LineMapping,
           name: str) -> TitleSpec:
    title_id = r.pattern(item, "id", name, _ID)

    def pick(key: str) -> tuple[LineMapping, str]:
        """The mapping a field is read from (the title's, else the defaults') and its name."""
        return (item, f"{name}.{key}") if key in item else (defaults, f"defaults.{key}")

    source = _source(r, base, item, name)
    title_file = None
    title = Title()
    rights = None
    where, field = pick("probe")
    probe = _probe(r, base, where, field)
    if "title" in item:
        title_file = _local(base, r.text(item, "title", name))
        try:
            title = resolve_title(title_file, {})
            # A title file's `rights:` (territories, windows), with the regions of the probe
            # config (or the shipped one) its grants may name, as `release` reads them.
            rights = rights_for(None, title_file, lambda: _regions(probe))
        except InputError as exc:
            raise r.fail(item, "title", f"{name}.title", str(exc)) from None
    where, field = pick("ladder")
    ladder = r.text(where, "ladder", field.rpartition(".")[0], "default")
    if ladder not in PRESETS:  # a ladder file, relative to the catalog
        ladder = str(_local(base, ladder))
    try:
        load_ladder(ladder)
    except InputError as exc:
        raise r.fail(where, "ladder", field, str(exc)) from None
    where, field = pick("codecs")
    codecs = _words(r, where, "codecs", field, ()) or None
    for codec in codecs or ():
        if codec not in CODECS:
            raise r.fail(where, "codecs", field, f"unknown codec {codec!r} (use "
                         f"{', '.join(CODECS)})")
    where, field = pick("encrypt")
    encrypt_value = where.get("encrypt", "none")
    encrypt_text = "none" if encrypt_value in (None, False) else str(encrypt_value)
    if encrypt_text not in (*SCHEMES, "none"):
        raise r.fail(where, "encrypt", field, f"must be one of {', '.join(SCHEMES)}, none; got "
                     f"{encrypt_value!r}")
    encrypt = None if encrypt_text == "none" else encrypt_text
    where, field = pick("keys")
    keys = r.text(where, "keys", field.rpartition(".")[0], "generate")
    kind, _, target = keys.partition(":")
    if kind not in ("generate", "cpix", "speke") or (kind != "generate") != bool(target):
        raise r.fail(where, "keys", field, "must be generate, cpix:FILE or speke:URL (raw keys "
                     "do not belong in a file)")
    if kind == "cpix":
        keys = f"cpix:{_existing(r, where, 'keys', field, _local(base, target))}"
    where, field = pick("drm")
    drm = None
    if "drm" in where:
        drm = r.text(where, "drm", field.rpartition(".")[0])
        try:
            parse_systems(drm)
        except InputError as exc:
            raise r.fail(where, "drm", field, str(exc)) from None
    where, field = pick("per_class")
    per_class = r.flag(where, "per_class", field.rpartition(".")[0], False)
    where, field = pick("chunks")
    chunks = str(where.get("chunks", "auto"))
    if chunks != "auto" and not (chunks.isdigit() and int(chunks) >= 1):
        raise r.fail(where, "chunks", field, f"must be auto or a count >= 1, got {chunks!r}")
    where, field = pick("segment_duration")
    segment = r.number(where, "segment_duration", field.rpartition(".")[0], 4.0, 1.0, 30.0)
    where, field = pick("formats")
    formats = _words(r, where, "formats", field, FORMATS)
    for fmt in formats:
        if fmt not in FORMATS:
            raise r.fail(where, "formats", field, f"{fmt!r}: formats are {', '.join(FORMATS)}")
    where, field = pick("destination")
    if "destination" not in where:
        raise r.fail(item, None, f"{name}.destination", "missing (here or in defaults)")
    template = r.text(where, "destination", field.rpartition(".")[0])
    try:
        destination = parse_s3_url(template.replace("{id}", title_id))
    except InputError as exc:
        raise r.fail(where, "destination", field, str(exc)) from None
    if not destination.prefix:
        raise r.fail(where, "destination", field, "needs a prefix per title (a bucket root "
                     "would mix titles): s3://BUCKET/PREFIX/{id}")
    return TitleSpec(
        id=title_id, source=source, title_file=title_file, title=title, ladder=ladder,
        codecs=codecs, encrypt=encrypt, keys=keys, drm=drm, per_class=per_class, chunks=chunks,
        segment_duration=segment, formats=formats, destination=destination, probe=probe,
        line=item.line, rights=rights,
    )


def _regions(probe: ProbeGate | None) -> dict[str, tuple[str, ...]]:
    config = load_config(probe.config if probe and probe.config else default_config_path())
    return {region.id: region.countries for region in config.regions}


def _source(r: Reader, base: Path, item: LineMapping, name: str) -> str:
    text = r.text(item, "source", name)
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        try:
            parse_s3_url(f"s3://{bucket}/")
        except InputError as exc:
            raise r.fail(item, "source", f"{name}.source", str(exc)) from None
        if not key or key.endswith("/"):
            raise r.fail(item, "source", f"{name}.source", f"{text}: names no object")
        return text
    if "://" in text:
        raise r.fail(item, "source", f"{name}.source", f"{text}: a source is a path or an "
                     "s3:// URL")
    return str(_existing(r, item, "source", f"{name}.source", _local(base, text)))


def _local(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base / path).absolute()


def _existing(r: Reader, where: LineMapping, key: str, field: str, path: Path) -> Path:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise r.fail(where, key, field, f"{path}: {what}")
    if path.stat().st_size == 0:
        raise r.fail(where, key, field, f"{path}: file is empty (0 bytes)")
    return path


def _words(r: Reader, where: LineMapping, key: str, field: str,
           default: tuple[str, ...]) -> tuple[str, ...]:
    value = where.get(key)
    if value is None and key not in where:
        return default
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v
                                                            for v in value):
        raise r.fail(where, key, field, f"must be a list of names, got {value!r}")
    return tuple(dict.fromkeys(value))


def _probe(r: Reader, base: Path, where: LineMapping, field: str) -> ProbeGate | None:
    value = where.get("probe")
    if value is None or value is False:
        return None
    if value is True:
        return ProbeGate(None, ())
    if not isinstance(value, LineMapping):
        raise r.fail(where, "probe", field, f"must be true, false or a mapping with config "
                     f"and regions, got {value!r}")
    r.unknown(value, field, _PROBE_FIELDS)
    config = None
    if "config" in value:
        config = _existing(r, value, "config", f"{field}.config",
                           _local(base, r.text(value, "config", field)))
    regions = _words(r, value, "regions", f"{field}.regions", ()) if "regions" in value else ()
    return ProbeGate(config, regions)

"""The page's one document (/preview.json): what the release holds and how the page plays it.

Everything a release engineer checks before pushing, from release.json and the manifests: the
renditions with their bitrates and measured quality, the audio and text tracks with their
roles, trick play (I-frame playlists, thumbnail sheets), the protection and where the keys come
from (never a key), and for a steered release its pathways and each region's order. URLs are
the preview's own, relative, except the published ones (a steered release's CDNs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urljoin

from preview.assets import SHAKA_PLAYER_VERSION
from preview.contents import Contents
from preview.keys import PreviewKeys
from preview.pathways import STEERING_PREFIX, SteeredRelease, local_base
from preview.regions import RegionOrder

RELEASE_PREFIX = "/release/"
CLEARKEY_PATH = "/keys/clearkey.json"
AES_KEY_PATH = "/keys/aes-128.key"
#: Where the page's player fetches the release: the release's own files from this preview
#: (a steered release's pathways mapped onto them), or the CDNs and steering server its
#: manifests name (what viewers get once it is pushed).
LOCAL, PUBLISHED = "local", "published"


@dataclass(frozen=True)
class Preview:
    """What one preview serves: the release, its keys and, when steered, its pathways and
    each region's order."""

    contents: Contents
    keys: PreviewKeys | None
    steered: SteeredRelease | None
    regions: tuple[RegionOrder, ...]
    source: str  # LOCAL or PUBLISHED: where the page plays from first

    def manifest_urls(self, source: str) -> dict[str, str]:
        """Format -> the URL the page's player loads."""
        if source == PUBLISHED and self.steered is not None:
            base = self.steered.pathways[0].base_url
            return {fmt: urljoin(base, path) for fmt, path in self.contents.manifests.items()}
        return {fmt: release_url(path) for fmt, path in self.contents.manifests.items()}


def release_url(path: str) -> str:
    return RELEASE_PREFIX + quote(path)


def page_doc(preview: Preview) -> dict[str, Any]:
    contents, release = preview.contents, preview.contents.release
    sources = {LOCAL: preview.manifest_urls(LOCAL)}
    if preview.steered is not None:
        sources[PUBLISHED] = preview.manifest_urls(PUBLISHED)
    return {
        "title": contents.root.resolve().name,
        "release": {
            "path": str(contents.root), "source": release.source, "duration": release.duration,
            "segment_duration": release.segment_duration, "formats": release.formats,
            "files": len(release.files), "bytes": release.total_bytes,
        },
        "source": preview.source,
        "sources": sources,
        "renditions": _renditions(contents),
        "trick_play": _trick_play(contents),
        "protection": _protection(preview),
        "steering": _steering(preview),
        "player": {"name": "shaka-player", "version": SHAKA_PLAYER_VERSION},
    }


def _renditions(contents: Contents) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"video": [], "audio": [], "text": []}
    for r in contents.release.renditions:
        doc: dict[str, Any] = {"id": r.id, "codec": r.codec, "bandwidth": r.bandwidth,
                               "average_bandwidth": r.average_bandwidth}
        if r.kind == "video":
            quality = contents.quality.get(r.id)
            doc.update(width=r.width, height=r.height, frame_rate=r.frame_rate,
                       quality=asdict(quality) if quality is not None else None)
        else:
            doc.update(language=r.language, role=r.role, flags=r.flags, name=r.name)
            if r.kind == "audio":
                doc.update(channels=r.channels, sample_rate=r.sample_rate)
        out.setdefault(r.kind, []).append(doc)
    out["video"].sort(key=lambda v: -v["bandwidth"])
    return out


def _trick_play(contents: Contents) -> dict[str, Any]:
    release = contents.release
    sheets = {t.id: [release_url(f.path) for f in release.files
                     if f.role == "image" and f.path.startswith(f"{t.id}/")]
              for t in release.thumbnails}
    return {
        "iframes": [{**asdict(i), "url": release_url(i.playlist)} for i in release.iframes],
        "thumbnails": [{**asdict(t), "sheets_urls": sorted(sheets[t.id])}
                       for t in release.thumbnails],
    }


def _protection(preview: Preview) -> dict[str, Any] | None:
    protection = preview.contents.release.protection
    if protection is None:
        return None
    keys = preview.keys
    return {
        "scheme": protection.scheme, "kids": protection.kids, "systems": protection.systems,
        "rendition_kids": protection.rendition_kids,
        "delivery": keys.delivery if keys is not None else None,
        "keys": (CLEARKEY_PATH if keys.delivery == "clearkey" else AES_KEY_PATH)
        if keys is not None else None,
        "keys_from": keys.source if keys is not None else None,
    }


def _steering(preview: Preview) -> dict[str, Any] | None:
    steered = preview.steered
    if steered is None:
        return None
    return {
        "default": steered.default,
        "pathways": [{"id": p.id, "base_url": p.base_url, "local": local_base(p.id)}
                     for p in steered.pathways],
        "servers": steered.servers,
        "local_servers": {fmt: f"{STEERING_PREFIX}{'hls' if fmt == 'hls' else 'dash'}.json"
                          for fmt in steered.servers},
        "regions": [asdict(r) for r in preview.regions],
    }

"""Where a release's keys come from: `--key`/`--iv` and `package --keys` → an EncryptionSpec.

`--keys` takes generate (new keys), raw (the --key KID:KEY), cpix:FILE (a CPIX 2.3 document)
and speke:URL (a SPEKE v2.0 key server), plus the DRM options every source shares (track class
thresholds, PlayReady LA_URL, Widevine content_id). Keys that are not given raw are stored in
the keystore before they are used, so a release's keys are never lost; the options are
validated before any request is sent or key is written. The error messages never repeat a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packager.drm.systems import SCHEMES, default_systems, parse_systems
from packager.encryption.spec import EncryptionSpec
from packager.errors import InputError
from packager.keys.keystore import Keystore, keystore_outside
from packager.keys.model import ClassThresholds, ContentKey, KeyConflictError, KeySet

if TYPE_CHECKING:
    from packager.keys.cpix import CpixDocument

#: `--keys` sources; cpix:FILE and speke:URL bring keys from outside.
KEY_SOURCES = ("generate", "raw", "cpix:FILE", "speke:URL")
_KEY_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
#: `--widevine-content-id 0x...` is hex; anything else is text, encoded as UTF-8.
_HEX = re.compile(r"^0[xX]((?:[0-9a-fA-F]{2})+)$")


def parse_key(text: str) -> ContentKey:
    """'KID_HEX:KEY_HEX' (32 hex digits each; dashes in the KID allowed). The error message
    never repeats the text: it may hold a real key."""
    kid, sep, key = text.strip().partition(":")
    kid = kid.replace("-", "")
    if not sep or not _KEY_HEX.match(kid) or not _KEY_HEX.match(key):
        raise InputError("a key is given as KID_HEX:KEY_HEX, 32 hex digits each")
    return ContentKey(bytes.fromhex(kid), bytes.fromhex(key))


def parse_iv(text: str) -> bytes:
    value = text.strip().removeprefix("0x").removeprefix("0X")
    if len(value) not in (16, 32) or not re.fullmatch(r"[0-9a-fA-F]+", value):
        raise InputError("an IV is 16 or 32 hex digits (8 or 16 bytes)")
    return bytes.fromhex(value)


def encryption_request(
    scheme: str | None,
    key: str | None,
    iv: str | None,
    key_from_env: bool = False,
    key_uri: str | None = None,
) -> EncryptionSpec | None:
    """The EncryptionSpec for the package command's --encrypt/--key/--iv, or None (clear).

    An explicit --key or --iv without --encrypt is refused (the user expects protection); a
    CDNPACK_KEY left in the environment is not, so clear packaging still works.
    """
    if scheme is None:
        if (key and not key_from_env) or iv or key_uri:
            raise InputError("--key/--iv/--key-uri need --encrypt")
        return None
    if not key:
        raise InputError(f"--encrypt {scheme} needs a key: --key KID:KEY or CDNPACK_KEY")
    return EncryptionSpec(scheme, parse_key(key), parse_iv(iv) if iv else None, key_uri)


def check_key_options(scheme: str | None, source: str, key: str | None, key_from_env: bool,
                      key_uri: str | None) -> str:
    """What every `--keys` source refuses alike: no CMAF scheme, an AES-128 key URI, and a
    --key on the command line for a source that brings its own keys (CDNPACK_KEY left in the
    environment is ignored then). Returns the scheme, cenc or cbcs."""
    if scheme not in SCHEMES:
        raise InputError("--keys/--drm need --encrypt cenc or cbcs")
    if key_uri:
        raise InputError("--key-uri is for --encrypt aes-128")
    if source != "raw" and key and not key_from_env:
        brings = "makes its own keys" if source == "generate" else "brings its own keys"
        raise InputError(f"--key is for --keys raw; --keys {source} {brings}")
    return scheme


def keyed_request(
    scheme: str | None,
    source: str,
    output: Path,
    *,
    key: str | None = None,
    iv: str | None = None,
    drm: str | None = None,
    per_class: bool = False,
    keystore: Path | None = None,
    content_id: str | None = None,
    key_from_env: bool = False,
    key_uri: str | None = None,
    thresholds: ClassThresholds | None = None,
    la_url: str | None = None,
    widevine_content_id: bytes | None = None,
) -> EncryptionSpec:
    """The EncryptionSpec for `--keys generate|raw` with `--drm`.

    generate: a fresh KeySet (one key, or AUDIO/SD/HD/UHD keys with `per_class`) is stored in
    the keystore before anything else happens, so a key is never used unsaved, and the
    keystore must lie outside the output tree (keys are never published with a release).
    A content id that already has keys reuses them.
    raw: the KID:KEY from --key / CDNPACK_KEY, one key for every track.
    """
    scheme = check_key_options(scheme, source, key, key_from_env, key_uri)
    systems = parse_systems(drm) if drm else default_systems(scheme)
    if source == "raw":
        if per_class:
            raise InputError("--per-class needs --keys generate (--key is one key)")
        if not key:
            raise InputError("--keys raw needs --key KID:KEY or CDNPACK_KEY")
        raw = parse_key(key)
        return EncryptionSpec(
            scheme, raw, parse_iv(iv) if iv else None,
            keyset=KeySet.single(content_id or output.name, raw, thresholds), systems=systems,
            la_url=la_url, widevine_content_id=widevine_content_id,
        )
    if source != "generate":
        raise InputError(f"--keys takes {', '.join(KEY_SOURCES)}")
    store = keystore_outside(keystore, output)
    title = content_id or output.name
    if any(stored.content_id == title for stored in store):
        # Re-packaging a title keeps its keys: licences are issued per KID.
        keyset = store.keyset(title, thresholds)
        if (len(keyset.distinct_keys) > 1) != per_class:
            held = "a single key" if per_class else "one key per track class"
            raise InputError(
                f"keystore {store.root}: content id {title!r} already has {held}; "
                "match --per-class to it or choose another --content-id"
            )
        fresh = False
    else:
        keyset = KeySet.generate(title, per_class=per_class, thresholds=thresholds)
        fresh = True
    spec = EncryptionSpec(  # validates the options: nothing is stored for a refused request
        scheme, keyset.distinct_keys[0], parse_iv(iv) if iv else None,
        keyset=keyset, systems=systems, la_url=la_url, widevine_content_id=widevine_content_id,
    )
    if fresh:
        store.put_keyset(keyset)
    return spec


def parse_widevine_content_id(text: str) -> bytes:
    """'0x<hex>' → those bytes (Shaka Packager's --content_id is hex); other text → its UTF-8
    bytes (WidevinePsshData.content_id is opaque bytes; licence servers often use the title)."""
    if not text.strip():
        raise InputError("--widevine-content-id must not be empty")
    value = text.strip()
    if value[:2] in ("0x", "0X"):
        match = _HEX.match(value)
        if match is None:
            raise InputError("--widevine-content-id 0x... needs whole bytes of hex digits")
        return bytes.fromhex(match.group(1))
    return text.encode("utf-8")


def package_encryption(
    scheme: str | None,
    source: str,
    output: Path,
    *,
    key: str | None = None,
    iv: str | None = None,
    drm: str | None = None,
    per_class: bool = False,
    keystore: Path | None = None,
    content_id: str | None = None,
    key_from_env: bool = False,
    key_uri: str | None = None,
    class_thresholds: str | None = None,
    la_url: str | None = None,
    widevine_content_id: str | None = None,
    key_server_timeout: float | None = None,
    sigv4_region: str | None = None,
) -> EncryptionSpec:
    """The EncryptionSpec of `package --keys SOURCE` (split at its first colon) and the DRM
    options. For cpix:FILE and speke:URL the keys are stored in the keystore (outside the
    output tree) before the spec is returned."""
    kind, sep, target = source.partition(":")
    kind = kind.strip().lower()
    thresholds = ClassThresholds.parse(class_thresholds) if class_thresholds else None
    widevine = None if widevine_content_id is None else parse_widevine_content_id(
        widevine_content_id)
    if kind != "speke" and (key_server_timeout is not None or sigv4_region is not None):
        raise InputError("--key-server-timeout and --speke-sigv4-region need --keys speke:URL")
    if kind in ("generate", "raw"):
        if sep:
            raise InputError(f"--keys {kind} takes no argument (cpix:FILE and speke:URL do)")
        return keyed_request(
            scheme, kind, output, key=key, iv=iv, drm=drm, per_class=per_class,
            keystore=keystore, content_id=content_id, key_from_env=key_from_env,
            key_uri=key_uri, thresholds=thresholds, la_url=la_url, widevine_content_id=widevine,
        )
    if kind not in ("cpix", "speke"):
        raise InputError("--keys takes generate, raw, cpix:FILE or speke:URL")
    if not target.strip():
        raise InputError(f"--keys {kind}: needs {'a file' if kind == 'cpix' else 'a URL'} "
                         f"after the colon ({kind}:{'FILE' if kind == 'cpix' else 'URL'})")
    scheme = check_key_options(scheme, kind, key, key_from_env, key_uri)
    systems = parse_systems(drm) if drm else default_systems(scheme)
    fixed_iv = parse_iv(iv) if iv else None
    # The options are checked before a request is sent or a key written: a throwaway key
    # stands in for the ones to come.
    EncryptionSpec(scheme, ContentKey.generate(), fixed_iv, systems=systems, la_url=la_url,
                   widevine_content_id=widevine)
    # CPIX (XML) and SPEKE (asyncio, aiohttp) are loaded for the sources that use them: 35 ms
    # that `--keys raw|generate` and every clear `package` do without.
    from packager.keys.cpix import read_cpix
    from packager.keys.speke import DEFAULT_TIMEOUT, KeyServer, fairplay_uris, fetch_keyset
    server = None
    if kind == "speke":
        timeout = DEFAULT_TIMEOUT if key_server_timeout is None else key_server_timeout
        server = KeyServer(target.strip(), timeout, sigv4_region)
    elif per_class:
        raise InputError("--per-class is for --keys generate and speke:URL; a CPIX document "
                         "brings its own key per track class (or not)")
    # A CPIX document is read (and refused) before the keystore is opened: a bad file must
    # leave nothing behind, not even a new keystore directory.
    document = read_cpix(Path(target), thresholds) if server is None else None
    store = keystore_outside(keystore, output)
    title = content_id or output.name
    uris: tuple[tuple[bytes, str], ...] = ()
    if server is not None:
        answer = fetch_keyset(server, store, title, scheme, systems, per_class, thresholds)
        keyset = answer.keyset
        if "fairplay" in systems:
            uris = fairplay_uris(answer)
    else:
        assert document is not None
        keyset = import_cpix_keyset(document, Path(target), store, content_id, title,
                                    thresholds)
    return EncryptionSpec(scheme, keyset.distinct_keys[0], fixed_iv, keyset=keyset,
                          systems=systems, la_url=la_url, widevine_content_id=widevine,
                          fairplay_uris=uris)


def import_cpix_keyset(
    doc: CpixDocument,
    path: Path,
    store: Keystore,
    content_id: str | None,
    title: str,
    thresholds: ClassThresholds | None,
) -> KeySet:
    """The key set of a CPIX document, stored in the keystore (all keys checked against it
    before any is written). The document's contentId names the title; without one, --content-id
    or the output's name does."""
    if doc.content_id and content_id and doc.content_id != content_id:
        raise InputError(f"{path}: holds the keys of content id {doc.content_id!r}, not "
                         f"{content_id!r}")
    if not doc.content_id:
        doc = replace(doc, content_id=title)
    keyset = doc.keyset
    if keyset is None:
        raise InputError(f"{path}: its keys do not give every track class (AUDIO, SD, HD, UHD) "
                         "exactly one key; add ContentKeyUsageRules or hold a single key")
    if any(s.content_id == keyset.content_id for s in store):
        known = store.keyset(keyset.content_id, thresholds)
        if dict(known.keys) != dict(keyset.keys):
            raise KeyConflictError(f"keystore {store.root}: content id {keyset.content_id!r} "
                                   f"already has other keys than {path}; nothing imported")
        return known
    classes = {k.kid: keyset.classes_of(k.kid) for k in keyset.distinct_keys}
    store.import_keys(keyset.distinct_keys, keyset.content_id, classes, path)
    return keyset


@dataclass(frozen=True)
class KeyOptions:
    """The key and DRM options of `package` and `release`, as given on the command line."""

    encrypt: str | None = None
    key: str | None = None
    #: The key came from CDNPACK_KEY, not --key: left in the environment, it is not a request.
    key_from_env: bool = False
    iv: str | None = None
    key_uri: str | None = None
    key_source: str | None = None
    per_class: bool = False
    class_thresholds: str | None = None
    key_server_timeout: float | None = None
    speke_sigv4_region: str | None = None
    playready_la_url: str | None = None
    widevine_content_id: str | None = None
    keystore: Path | None = None
    content_id: str | None = None
    drm: str | None = None


def encryption_for(options: KeyOptions, output: Path) -> EncryptionSpec | None:
    """The EncryptionSpec of a package request, or None (clear). Keys are resolved and stored
    here, before anything is encoded. Any key-source or DRM option means `--keys` (raw when
    not named); otherwise `--encrypt` with `--key` is the plain single-key request."""
    o = options
    drm_options = (o.class_thresholds, o.key_server_timeout, o.speke_sigv4_region,
                   o.playready_la_url, o.widevine_content_id)
    if o.key_source or o.drm or o.per_class or o.content_id or any(
            x is not None for x in drm_options):
        return package_encryption(
            o.encrypt, o.key_source or "raw", output, key=o.key, iv=o.iv, drm=o.drm,
            per_class=o.per_class, keystore=o.keystore, content_id=o.content_id,
            key_from_env=o.key_from_env, key_uri=o.key_uri, class_thresholds=o.class_thresholds,
            la_url=o.playready_la_url, widevine_content_id=o.widevine_content_id,
            key_server_timeout=o.key_server_timeout, sigv4_region=o.speke_sigv4_region,
        )
    return encryption_request(o.encrypt, o.key, o.iv, key_from_env=o.key_from_env,
                              key_uri=o.key_uri)

"""`package --keys` sources → an EncryptionSpec: generate, raw, cpix:FILE, speke:URL.

generate and raw are cenc.keyed_request's; this module adds the two that bring keys from
outside (a CPIX 2.3 document, a SPEKE v2.0 key server) and the DRM options every source shares
(track class thresholds, PlayReady LA_URL, Widevine content_id). Keys from outside are stored
in the keystore before they are used, exactly like generated ones, so a release's keys are
never lost; the options are validated before any request is sent or key is written.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from packager.encryption.cenc import (
    EncryptionSpec,
    check_key_options,
    default_systems,
    keyed_request,
    keystore_outside,
    parse_iv,
    parse_systems,
)
from packager.errors import InputError
from packager.keys.cpix import read_cpix
from packager.keys.model import ClassThresholds, ContentKey, KeyConflictError, KeySet, Keystore
from packager.keys.speke import DEFAULT_TIMEOUT, KeyServer, fairplay_uris, fetch_keyset

#: `--widevine-content-id 0x...` is hex; anything else is text, encoded as UTF-8.
_HEX = re.compile(r"^0[xX]((?:[0-9a-fA-F]{2})+)$")


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
    server = None
    if kind == "speke":
        timeout = DEFAULT_TIMEOUT if key_server_timeout is None else key_server_timeout
        server = KeyServer(target.strip(), timeout, sigv4_region)
    elif per_class:
        raise InputError("--per-class is for --keys generate and speke:URL; a CPIX document "
                         "brings its own key per track class (or not)")
    store = keystore_outside(keystore, output)
    title = content_id or output.name
    uris: tuple[tuple[bytes, str], ...] = ()
    if server is not None:
        answer = fetch_keyset(server, store, title, scheme, systems, per_class, thresholds)
        keyset = answer.keyset
        if "fairplay" in systems:
            uris = fairplay_uris(answer)
    else:
        keyset = import_cpix_keyset(Path(target), store, content_id, title, thresholds)
    return EncryptionSpec(scheme, keyset.distinct_keys[0], fixed_iv, keyset=keyset,
                          systems=systems, la_url=la_url, widevine_content_id=widevine,
                          fairplay_uris=uris)


def import_cpix_keyset(
    path: Path,
    store: Keystore,
    content_id: str | None,
    title: str,
    thresholds: ClassThresholds | None,
) -> KeySet:
    """The key set of a CPIX document, stored in the keystore (all keys checked against it
    before any is written). The document's contentId names the title; without one, --content-id
    or the output's name does."""
    doc = read_cpix(path, thresholds)
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
    try:
        store.put_keyset(keyset)
    except KeyConflictError as exc:
        raise KeyConflictError(f"{path}: {exc}; nothing imported") from None
    return keyset

"""CTA-5004 Common Media Client Data: decode one CMCD string into keys and typed values.

CTA-5004 (CMCD v1) section 3.2: the payload is a comma-separated list of `key=value` members in
the syntax of Structured Field Values (RFC 8941 §3.2, a Dictionary): integers and decimals as
numbers, strings in double quotes with `\\"` and `\\\\` escapes, tokens (`ot=v`) bare, and a
boolean true as the bare key alone (`bs`; false is `bs=?0` or, in v1, the key left out). In a
query (section 2.3) the whole payload is one URL-encoded parameter named `CMCD`.

The decode mirrors the SVTA Common Media Library's `decodeCmcd` (the test oracle) for every
well-formed member. Two rules of our own, for data from the field:
- unknown keys (custom `com.example-x`, later versions' keys) are kept with their decoded value;
- a member that is not valid Structured Field syntax, or whose value is not of the type
  CTA-5004 gives its key (`br="x"`, `bl=-4`, `ot=q`), is counted in `malformed` and skipped,
  never raised: one bad player must not stop an ingest.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

#: CMCD v1 keys whose value is a non-negative integer (kbps, ms, or the version number).
INTEGER_KEYS = frozenset({"br", "bl", "d", "dl", "mtp", "rtp", "tb", "v"})
BOOLEAN_KEYS = frozenset({"bs", "su"})
STRING_KEYS = frozenset({"cid", "sid", "nor", "nrr"})
DECIMAL_KEYS = frozenset({"pr"})
#: Token keys and their allowed values (CTA-5004 Table 1: object type, streaming format,
#: stream type).
TOKENS = {
    "ot": frozenset({"m", "a", "v", "av", "i", "c", "tt", "k", "o"}),
    "sf": frozenset({"d", "h", "s", "o"}),
    "st": frozenset({"v", "l"}),
}
QUERY_PARAM = "CMCD"

Value = bool | int | float | str | bytes | list["Value"]

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]{1,3})?")
_BINARY = re.compile(r":([A-Za-z0-9+/=]*):")


@dataclass(frozen=True)
class Cmcd:
    """One decoded payload: the keys that decoded (known and unknown) and the malformed ones."""

    data: dict[str, Value]
    malformed: tuple[str, ...]  # keys (or raw members) counted and skipped

    def get_int(self, key: str) -> int | None:
        value = self.data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def flag(self, key: str) -> bool:
        return self.data.get(key) is True


class _Bad(ValueError):
    """A member that is not Structured Field syntax."""


def decode(text: str) -> Cmcd:
    """Decode a CMCD payload (already URL-decoded): `br=3200,bs,sid="6e2f..."`."""
    data: dict[str, Value] = {}
    malformed: list[str] = []
    for member in _members(text):
        key, _, raw = member.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            malformed.append(member.strip()[:40])
            continue
        try:
            value: Value = _item(raw.strip()) if "=" in member else True
        except _Bad:
            malformed.append(key)
            continue
        if not _typed(key, value):
            malformed.append(key)
            continue
        data[key] = value
    return Cmcd(data, tuple(malformed))


def from_query(query: str) -> Cmcd | None:
    """The CMCD payload of a URL query (`CMCD=` parameter, URL-encoded); None without one."""
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == QUERY_PARAM:
            return decode(value)
    return None


def _members(text: str) -> list[str]:
    """Split on commas outside quoted strings."""
    members: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if quoted:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            current.append(ch)
        elif ch == ",":
            members.append("".join(current))
            current = []
        else:
            current.append(ch)
    members.append("".join(current))
    return [m for m in members if m.strip()]


def _item(raw: str) -> Value:
    """One bare item or inner list (RFC 8941 §3.1.1, §3.3); parameters (`;a=b`) are dropped."""
    if raw.startswith("("):
        if ")" not in raw:
            raise _Bad(raw)
        return [_bare(x) for x in raw[1:raw.rindex(")")].split()]
    if raw.startswith('"'):
        return _bare(raw[:_string_end(raw) + 1])
    return _bare(raw.split(";", 1)[0])


def _string_end(raw: str) -> int:
    escaped = False
    for i, ch in enumerate(raw[1:], start=1):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return i
    raise _Bad(raw)


def _bare(raw: str) -> Value:
    if not raw:
        raise _Bad(raw)
    if raw.startswith('"'):
        if _string_end(raw) != len(raw) - 1:
            raise _Bad(raw)
        return _unescape(raw[1:-1])
    if raw in ("?1", "?0"):
        return raw == "?1"
    if _NUMBER.fullmatch(raw):
        return float(raw) if "." in raw else int(raw)
    binary = _BINARY.fullmatch(raw)
    if binary:
        return base64.b64decode(binary.group(1))
    if _TOKEN.fullmatch(raw):
        return raw
    raise _Bad(raw)


def _unescape(body: str) -> str:
    """RFC 8941 §3.3.3: only `\\"` and `\\\\` are escapes; any other backslash is an error."""
    out: list[str] = []
    chars = iter(body)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            if nxt not in ('"', "\\"):
                raise _Bad(body)
            out.append(nxt)
        else:
            out.append(ch)
    return "".join(out)


def _typed(key: str, value: Value) -> bool:
    """Whether a known key's value has its CTA-5004 type; unknown keys take any value."""
    if key in INTEGER_KEYS:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if key in BOOLEAN_KEYS:
        return isinstance(value, bool)
    if key in STRING_KEYS:
        return isinstance(value, str)
    if key in DECIMAL_KEYS:
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if key in TOKENS:
        return isinstance(value, str) and value in TOKENS[key]
    return True

"""`keys` results: keystore entries (KIDs and what they are for; a key only with --reveal)."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from packager.keys.keystore import StoredKey
from render.console import out_console


def stored_doc(stored: StoredKey, reveal: bool = False) -> dict[str, Any]:
    """A keystore entry for output: the key itself only when asked for with --reveal."""
    doc: dict[str, Any] = {
        "kid": stored.key.kid_uuid,
        "content_id": stored.content_id,
        "track_classes": [c.value for c in stored.track_classes],
        "created": stored.created,
    }
    if reveal:
        doc["key"] = stored.key.key.hex()
        doc["iv"] = None if stored.key.iv is None else stored.key.iv.hex()
    return doc


def show_new_keys(content_id: str, rows: list[dict[str, str]]) -> None:
    table = Table(title=f"keys of {content_id}")
    table.add_column("class")
    table.add_column("KID", min_width=36, no_wrap=True)
    for row in rows:
        table.add_row(row["track_class"], row["kid"])
    out_console.print(table)


def show_keystore(docs: list[dict[str, Any]]) -> None:
    table = Table(title="keystore")
    table.add_column("KID", min_width=36, no_wrap=True)
    for column in ("content id", "classes", "created"):
        table.add_column(column)
    for d in docs:
        table.add_row(d["kid"], d["content_id"] or "-", "+".join(d["track_classes"]) or "-",
                      d["created"])
    out_console.print(table)


def show_key(doc: dict[str, Any]) -> None:
    for name, value in doc.items():
        shown = "+".join(value) or "-" if isinstance(value, list) else value
        click.echo(f"{name}: {'-' if shown is None else shown}")

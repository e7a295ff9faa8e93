"""`sign --cookies` for people: Set-Cookie lines to paste into a test server or a browser."""

from __future__ import annotations

import click


def show_cookies(values: dict[str, str]) -> None:
    for name, value in values.items():
        click.echo(f"Set-Cookie: {name}={value}; Path=/; Secure; HttpOnly")

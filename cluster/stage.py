"""An S3 prefix as the Stage every worker and the coordinator reach (packager/executor.py).

Jobs name what they read and write by key; this stage keeps each under its staging prefix. A PUT
is stored whole or not at all, so a reader never sees half an object (the rename a directory
stage needs); a GET lands under a temporary name renamed into place. The stage travels to the
workers inside jobs: it pickles without static credentials (a worker uses its own: an instance or
task role, its environment), and each process makes its S3 client once, through cdn/s3.py's one
factory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdn.objects import download, presigned_get
from cdn.s3 import Connection, S3Location, client, delete_keys, list_prefix, origin_error

_clients: dict[Connection, Any] = {}
_lock = threading.Lock()


def _client(connection: Connection) -> Any:
    with _lock:
        if connection not in _clients:
            _clients[connection] = client(connection)
        return _clients[connection]


@dataclass(frozen=True)
class S3Stage:
    location: S3Location
    connection: Connection

    def __reduce__(self) -> tuple[Any, ...]:
        """Static credentials stay on the coordinator (a worker has its own)."""
        return (S3Stage, (self.location, replace(self.connection, credentials=None)))

    def _s3(self) -> Any:
        return _client(self.connection)

    def url_of(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{self.location.key(key)}"

    def put(self, local: Path, key: str) -> None:
        try:
            self._s3().upload_file(str(local), self.location.bucket, self.location.key(key))
        except (ClientError, BotoCoreError, OSError) as exc:
            raise origin_error(exc, f"staging {key} failed") from None

    def get(self, key: str, local: Path) -> None:
        download(self._s3(), self.url_of(key), local)

    def delete_prefix(self, prefix: str) -> None:
        """Every object under `prefix` of the stage ("": the whole stage)."""
        relative = prefix.strip("/")
        under = (S3Location(self.location.bucket, self.location.key(relative)) if relative
                 else self.location)
        s3 = self._s3()
        delete_keys(s3, self.location.bucket, sorted(list_prefix(s3, under)))

    def url(self, key: str) -> str:
        """A presigned GET of a staged object: ffmpeg on a worker reads it by HTTP ranges."""
        return presigned_get(self._s3(), self.url_of(key))

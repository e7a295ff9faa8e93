"""CloudFront invalidations: only the manifest paths a push changed, within the service limits."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from cdn.s3 import OriginError, origin_error

#: CloudFront allows 3,000 individual file paths in progress per distribution at a time
#: (Developer Guide, "Concurrent invalidation request maximum"); larger sets go in batches,
#: each awaited before the next is sent.
MAX_PATHS_PER_BATCH = 3000


@dataclass(frozen=True)
class Invalidation:
    id: str
    paths: list[str]
    status: str


def invalidation_paths(keys: list[str]) -> list[str]:
    """Object keys as CloudFront paths: leading slash, percent-encoded, sorted, unique."""
    return sorted({"/" + quote(key, safe="/*-._~") for key in keys})


def invalidate(
    cloudfront: Any,
    distribution: str,
    paths: list[str],
    wait: bool,
    timeout: float = 900.0,
    poll: float = 5.0,
) -> list[Invalidation]:
    """Create invalidations (batched); with wait, poll until each reports completion."""
    done: list[Invalidation] = []
    size = MAX_PATHS_PER_BATCH
    batches = [paths[i : i + size] for i in range(0, len(paths), size)]
    for index, batch in enumerate(batches):
        try:
            answer = cloudfront.create_invalidation(
                DistributionId=distribution,
                InvalidationBatch={
                    "Paths": {"Quantity": len(batch), "Items": batch},
                    "CallerReference": f"cdnpack-{uuid.uuid4()}",
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise origin_error(exc, f"invalidation on {distribution} failed") from exc
        created = answer["Invalidation"]
        status = str(created["Status"])
        # Batches after the first must wait anyway, or they would exceed the in-progress limit.
        if wait or index < len(batches) - 1:
            status = wait_for(cloudfront, distribution, created["Id"], timeout, poll)
        done.append(Invalidation(created["Id"], batch, status))
    return done


def wait_for(cloudfront: Any, distribution: str, invalidation: str, timeout: float,
             poll: float) -> str:
    """Poll ourselves: boto3's waiter expects 'Completed' exactly, and S3-compatible stacks
    (moto among them) say 'COMPLETED', so the status is compared case-insensitively."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = cloudfront.get_invalidation(DistributionId=distribution, Id=invalidation)
        except (ClientError, BotoCoreError) as exc:
            raise origin_error(exc, f"invalidation {invalidation} status") from exc
        status = str(answer["Invalidation"]["Status"])
        if status.lower() == "completed":
            return status
        if time.monotonic() + poll > deadline:
            raise OriginError(f"invalidation {invalidation} still {status} after {timeout:.0f} s")
        time.sleep(poll)

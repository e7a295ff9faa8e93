"""A catalog's Dask cluster on AWS ECS Fargate with dask-cloudprovider, and the catalog run on it.

    pip install "dask-cloudprovider[aws]"      # on the coordinator, beside cdnpack
    python deploy/dask/fargate.py catalog.yaml

The scheduler and workers run deploy/dask/Dockerfile's image (pushed to ECR); the workers read the
sources by presigned URLs and write the encode stage on S3 with the task role; the coordinator
(this machine) packages, encrypts with keys it never sends, and publishes. Sizing:
docs/catalog.md.
"""

from __future__ import annotations

import subprocess
import sys

from dask_cloudprovider.aws import FargateCluster

IMAGE = "REPLACE-WITH-ACCOUNT.dkr.ecr.REPLACE-WITH-REGION.amazonaws.com/cdnpack-dask:0.1.0"
#: A role the tasks assume: s3:PutObject on the stage prefix (sources and staged inputs are read
#: by presigned URLs the coordinator signs; it also empties the stage).
TASK_ROLE = "arn:aws:iam::REPLACE-WITH-ACCOUNT:role/cdnpack-dask-worker"


def main(catalog: str) -> int:
    with FargateCluster(
        image=IMAGE,
        n_workers=8,
        worker_cpu=4096,            # 4 vCPU: one ffmpeg per worker uses them all
        worker_mem=16384,
        worker_nthreads=1,          # one job at a time per worker (cluster/reaper.py)
        scheduler_cpu=1024,
        scheduler_mem=4096,
        scheduler_timeout="30 minutes",
        task_role_arn=TASK_ROLE,
        fargate_use_private_ip=True,  # the coordinator runs in the same VPC
        fargate_spot=True,            # a lost worker's job runs again elsewhere
    ) as cluster:
        return subprocess.call(["cdnpack", "catalog", "run", catalog,
                                "--scheduler", cluster.scheduler_address,
                                "--workers", "8", "--max-parallel", "4"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

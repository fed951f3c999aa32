"""The batch-scoring state machine (Step Functions): starting a job's execution.

The execution is named after the job, so a notification S3 delivers twice starts one execution:
Step Functions answers a repeated ``StartExecution`` of a running STANDARD execution with the
same name and input with that execution, and refuses a different input with
``ExecutionAlreadyExists`` (the job is already running or ran: nothing to do).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import StorageError


class StateMachine:
    def __init__(self, arn: str, sfn: Any) -> None:
        self.arn = arn
        self._sfn = sfn

    def start(self, name: str, execution_input: Mapping[str, Any]) -> str | None:
        """The execution's ARN; None when one of that name exists already."""
        try:
            response = self._sfn.start_execution(
                stateMachineArn=self.arn,
                name=name,
                input=json.dumps(execution_input, separators=(",", ":"), allow_nan=False),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return None
            raise StorageError(f"cannot start {self.arn} ({name}): {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot start {self.arn} ({name}): {exc}") from exc
        return str(response["executionArn"])

    def map_run_counts(self, map_run_arn: str) -> dict[str, int]:
        """A Map Run's item counts (``total``, ``succeeded``, ``failed``, ...)."""
        try:
            response = self._sfn.describe_map_run(mapRunArn=map_run_arn)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot describe {map_run_arn}: {exc}") from exc
        counts = response.get("itemCounts") or {}
        return {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}

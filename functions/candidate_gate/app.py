"""Candidate gate: the retrainer's OnSuccess destination, in the serving runtime.

Checks the staged ONNX export against scikit-learn's outputs (parity), scores it and the
production model on the same holdout, then registers it as a candidate or rejected version and
promotes it when it wins. Each candidate is judged at most once (Powertools idempotency): a
redelivered destination record gets the first decision back.

Also the target of the "SageMaker Training Job State Change" rule: a training job's candidate
is unpacked, staged and judged the same way; a failed or stopped job is a rejected retrain.
Each job's final state is handled once.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.idempotency import idempotency_config, persistence_layer
from mlops.domain.training_jobs import is_job_event, job_record, parse_job_record
from mlops.domain.triggers import staged_candidates
from mlops.observability import logger, metrics, tracer
from mlops.services.gate import gate_service
from mlops.services.job_completion import job_completion_service
from mlops.settings import gate_settings

settings = gate_settings()
gate = gate_service()
completion = job_completion_service(gate)
idempotency = idempotency_config("[model, candidate_id]", settings.idempotency_days)
job_idempotency = idempotency_config("[job_name, job_status]", settings.idempotency_days)


@idempotent_function(
    data_keyword_argument="staged",
    persistence_store=persistence_layer(settings.idempotency_table),
    config=idempotency,
)
def judge_once(staged: dict[str, str]) -> dict[str, Any]:
    return gate.judge(
        staged["model"], staged["candidate_id"], candidate_sha256=staged.get("candidate_sha256")
    ).as_dict()


@idempotent_function(
    data_keyword_argument="job",
    persistence_store=persistence_layer(settings.idempotency_table),
    config=job_idempotency,
)
def complete_once(job: dict[str, Any]) -> dict[str, Any]:
    return completion.complete(parse_job_record(job))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    job_idempotency.register_lambda_context(context)
    if is_job_event(event):
        return {"model": settings.model_name, "training_job": complete_once(job=job_record(event))}
    decisions = [judge_once(staged=c) for c in staged_candidates(event, settings.model_name)]
    return {"model": settings.model_name, "decisions": decisions}

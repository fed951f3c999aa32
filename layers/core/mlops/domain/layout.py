"""Where everything lives in S3: every prefix and key pattern the functions write and read,
defined once (DESIGN §3). Hive-style ``model=``/``version=``/``dt=``/``hour=`` partitions let
Athena's partition projection query captures, feedback and sketches as they are.
"""

from __future__ import annotations

MODELS = "models/"  # models/<model>/<version>/model.onnx | manifest.json | baseline.json
STAGING = "staging/"  # staging/<model>/<candidate id>/: a retrain's candidate before the gate
DATASETS = "datasets/"  # datasets/<sha256>/<file>: accepted training data, immutable
CONFIG = "config/"  # config/<model>.toml: the config the stack serves
CAPTURES = "captures/"  # captures/model=/version=/dt=/hour=/<batch>.jsonl.gz
FEEDBACK = "feedback/"  # feedback/dt=/hour=/<batch>.jsonl.gz
SKETCHES = "sketches/"  # sketches/model=/version=/dt=/hour=/<batch>.json, rollup/ per hour
LABELS = "labels/"  # labels/model=/dt=/hour=/labeled.json.gz: labels folded per capture hour
DRIFT_REPORTS = "reports/drift/"
RETRAIN_REPORTS = "reports/retrain/"
ROLLOUT_REPORTS = "reports/rollout/"
# Batch scoring: uploads under the template's BatchPrefix (``batch/`` by default) in the
# training data bucket start a job; its outputs go under BATCH_OUTPUT/<job id>/ there.
BATCH_INPUT = "batch/"
BATCH_OUTPUT = "batch-output/"  # <job>/summary.json, parts/part-<row>.csv|.json, rejected-...
# Batch captures share the capture partitions (one Glue table) under names starting with
# this, so the label fold and the traffic readers skip them by name (cost follows labels).
BATCH_CAPTURE_NAME = "batch-"


def version_prefix(model: str, version: str) -> str:
    return f"{MODELS}{model}/{version}/"


def staging_prefix(model: str, candidate_id: str) -> str:
    return f"{STAGING}{model}/{candidate_id}/"


def training_jobs_prefix(model: str) -> str:
    """``staging/<model>/jobs/``: SageMaker training jobs' inputs and outputs:
    ``<job>/job.json`` (what the job trains), ``<job>/output/model.tar.gz`` (the staged
    candidate SageMaker uploads), ``source/<sha256>.tar.gz`` (the entry point's package)."""
    return f"{STAGING}{model}/jobs/"


def config_key(model: str) -> str:
    return f"{CONFIG}{model}.toml"


def capture_prefix(model: str, version: str | None = None) -> str:
    return f"{CAPTURES}model={model}/" + (f"version={version}/" if version is not None else "")


def sketch_prefix(model: str, version: str | None = None) -> str:
    return f"{SKETCHES}model={model}/" + (f"version={version}/" if version is not None else "")


def label_prefix(model: str) -> str:
    return f"{LABELS}model={model}/"


def batch_output_prefix(job_id: str) -> str:
    return f"{BATCH_OUTPUT}{job_id}/"

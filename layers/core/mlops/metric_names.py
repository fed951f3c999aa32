"""Every CloudWatch metric the functions publish, named once: the code emits these, the
template's alarms watch them (a test checks every alarm names one).
"""

from __future__ import annotations


class Metric:
    """Metric names as CloudWatch shows them (PascalCase)."""

    CANDIDATES_STAGED = "CandidatesStaged"
    CANDIDATE_ERRORS = "CandidateErrors"
    CANDIDATE_ERROR_RATE = "CandidateErrorRate"
    CANDIDATE_HELD = "CandidateHeld"
    CANDIDATE_LOAD_FAILURES = "CandidateLoadFailures"
    CANDIDATE_PROMOTED = "CandidatePromoted"
    CANDIDATE_REJECTED = "CandidateRejected"
    CAPTURE_FAILURES = "CaptureFailures"
    DATASET_DRIFT = "DatasetDrift"
    DRIFT_EVALUATIONS = "DriftEvaluations"
    DRIFT_SHARE = "DriftShare"
    DUPLICATE_TRIGGERS = "DuplicateTriggers"
    # Estimates (CBPE, DLE) are named as such: never mistaken for quality measured on labels.
    ESTIMATED_QUALITY = "EstimatedQuality"
    ESTIMATED_QUALITY_BREACH = "EstimatedQualityBreach"
    ESTIMATE_REJECTED = "EstimateRejected"
    ESTIMATE_UNSCORED_ROWS = "EstimateUnscoredRows"
    EVALUATED_ROWS = "EvaluatedRows"
    EVALUATION_PREDICTIONS = "EvaluationPredictions"
    FEATURE_DRIFT_SCORE = "FeatureDriftScore"
    LIVE_QUALITY = "LiveQuality"
    MODEL_REFRESH_FAILURES = "ModelRefreshFailures"
    PARITY_FAILED = "ParityFailed"
    PROMOTION_CONFLICTS = "PromotionConflicts"
    QUALITY_BREACH = "QualityBreach"
    RETRAIN_REQUESTED = "RetrainRequested"
    RETRAIN_SKIPPED = "RetrainSkipped"
    ROLLOUT_ABORTED = "RolloutAborted"
    ROLLOUT_EVALUATED = "RolloutEvaluated"
    ROLLOUT_PROMOTED = "RolloutPromoted"
    ROLLOUT_ROLLED_BACK = "RolloutRolledBack"
    ROLLOUT_STARTED = "RolloutStarted"
    ROLLOUT_SWITCHED = "RolloutSwitched"
    ROLLOUT_WAITING = "RolloutWaiting"
    SERVED_VERSION_MISMATCH = "ServedVersionMismatch"
    TRAINING_DATA_REJECTED = "TrainingDataRejected"
    TRAINING_JOBS_FAILED = "TrainingJobsFailed"
    TRAINING_JOBS_STARTED = "TrainingJobsStarted"
    TRAINING_ROWS = "TrainingRows"

"""A retrain as a SageMaker training job: the entry point (``entry``) and the source package
the retrainer uploads for it (``source_package``)."""

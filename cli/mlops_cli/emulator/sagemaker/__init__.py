"""SageMaker training jobs on the local stack: moto records CreateTrainingJob and runs nothing;
``job_runner`` runs a recorded job's entry point the way the training image would, and
``watcher`` notices new jobs, records their outcome in moto and puts their "SageMaker Training
Job State Change" event on the default bus, where the template's rules deliver it."""

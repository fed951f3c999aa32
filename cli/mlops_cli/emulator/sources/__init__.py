"""The template's non-HTTP event sources, delivered locally the way AWS delivers them.

One module per source: ``sqs`` (event source mappings), ``s3`` (bucket notifications),
``schedule`` (Schedule / ScheduleV2), ``rules`` (EventBridge rules), ``sns`` (topic
subscriptions), ``logs`` (log shipping and subscription filters). ``async_invoke`` is Lambda's
asynchronous invocation they feed (retries, event age, reserved concurrency, dead-letter queue,
destinations). ``event_sources`` reads them from the template and runs them (``EventSources``);
``moto_backend``, ``timers``, ``declarations`` and ``lambda_service`` are what they share.

Each module's docstring says what is faithful to AWS, what is not, and where moto differs.
"""

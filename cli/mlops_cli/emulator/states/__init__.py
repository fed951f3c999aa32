"""Step Functions on the local stack: the template's state machines, their executions run.

One module per piece, read in this order: ``definition`` (the ASL a definition may use, checked
and compiled once; anything else refused naming the state and field), ``paths``,
``intrinsics`` and ``choice`` (JSONPath, intrinsic functions, Choice rules), ``interpreter``
(states, data flow, Retry/Catch), ``map_run`` (a DISTRIBUTED Map: batches, child executions,
failure tolerance, ResultWriter) with ``item_reader`` and ``objects`` (streamed S3 objects),
and ``service`` (the state machines in moto, executions started through the Step Functions API
run and their outcome written back). Each module's docstring says what is faithful to AWS and
what is not.
"""

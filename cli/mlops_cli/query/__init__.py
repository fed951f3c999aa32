"""``mlops query``: SQL over captured predictions and their labels, by Athena on a deployed stack
and by DuckDB on the local stack, both from the Glue tables the template declares."""

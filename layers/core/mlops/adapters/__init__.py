"""The only place boto3 lives. Adapters translate AWS errors into ``mlops.errors``."""

"""The path most Lambda ML samples take, for the inference benchmark: a handler that loads a
scikit-learn pipeline with joblib from S3 at init, builds a pandas DataFrame from the request
and calls ``predict``. No validation, no Powertools. Benchmark-only; never deployed.
"""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any

import boto3
import joblib
import pandas as pd

s3 = boto3.client("s3")
model = joblib.load(
    io.BytesIO(
        s3.get_object(Bucket=os.environ["SAMPLE_MODEL_BUCKET"], Key=os.environ["SAMPLE_MODEL_KEY"])[
            "Body"
        ].read()
    )
)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raw = event["body"]
    body = json.loads(base64.b64decode(raw) if event.get("isBase64Encoded") else raw)
    frame = pd.DataFrame(body["instances"])
    predictions = model.predict(frame).tolist()
    return {"statusCode": 200, "body": json.dumps({"predictions": predictions})}

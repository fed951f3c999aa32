"""Serverless MLOps: ONNX inference, prediction logging, drift evaluation and safe retraining
for scikit-learn models on AWS Lambda."""

__version__ = "0.1.0"

"""Powertools logger and metrics shared by every room. Cheap to build: nothing here does I/O."""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "zego-stream-resume"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ZegoStreamModeration"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# At DEBUG, urllib3 logs every request line (ours carry the signature in the query string) and
# botocore logs response bodies (GetSecretValue's holds the secret). Whatever level the root
# logger is given (AWS_LAMBDA_LOG_LEVEL=DEBUG, say), those lines stay off.
for _chatty in ("urllib3", "botocore"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

"""The domain: pure decisions about resume requests, ZEGO calls and their outcomes.

No I/O here, and no import of an adapter, boto3, botocore or requests (`make lint` checks it with
import-linter): the adapters are reached through the protocols in `zego_resume.ports`, and unit
tests drive every module with in-memory fakes.
"""

"""The adapters: everything that talks to the outside (ZEGO over HTTPS, Secrets Manager, SQS,
DynamoDB) or owns threads and sleeping. Each implements a protocol of `zego_resume.ports`."""

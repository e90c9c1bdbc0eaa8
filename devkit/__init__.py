"""The development tooling that the tests, the demo, the local stack and the benchmarks share:
canonical events and SQS event builders (`events`), template.yaml read and evaluated as a
deployment would (`template`), and the toolchain — python3.12, `sam build`, sizes (`toolchain`).

Never imported by the function: it runs without any of this on Lambda."""

"""The benchmarks, one module each. Each module's BENCHMARK names its benchmark (what `--only`
selects) and runs it on the Context the harness hands it (bench/common.py); the harness
(bench/harness.py) lists them in the table's order."""

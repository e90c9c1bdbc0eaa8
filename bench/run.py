"""`python -m bench.run` (`make bench`): the benchmarks' entry point. The command line, the
services and the running of each benchmark are bench/harness.py's; each benchmark is a module of
bench/benchmarks/; the cost is bench/cost.py's, the table and the JSON bench/report.py's."""

import sys

from .harness import main

if __name__ == "__main__":
    sys.exit(main())

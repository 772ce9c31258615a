#!/usr/bin/env bash
# The queue is benchmarks/ladder.py (one runner for here and Ray); this name stays for the commands
# already written down: bash benchmarks/ladder.sh DATA_DIR RUNS ARM:WIDTH:SEED... (DEVICE, JPEG_DIR).
exec python3 "$(dirname "$0")/ladder.py" "$@"

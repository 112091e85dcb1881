#!/usr/bin/env bash
# Run every atheris harness under fuzz/ for a bounded time: fuzz/run.sh SECONDS (default 30 each).
# Seeds come from fuzz/_seeds.py; corpora and crash files go under build/fuzz/. Exits non-zero
# if any harness finds an input that raises anything but RemoteProtocolError (or differs when
# fed in chunks).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
py=.venv/bin/python
out=build/fuzz
mkdir -p "$out"
PYTHONPATH=. $py fuzz/_seeds.py "$out/corpus"
status=0
for harness in fuzz/rfb_*.py; do
    name=$(basename "$harness" .py)
    mkdir -p "$out/corpus/$name" "$out/crashes/$name"
    echo "== $name (${seconds}s)"
    if ! $py "$harness" "$out/corpus/$name" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=10 -artifact_prefix="$out/crashes/$name/" -print_final_stats=1 \
        >"$out/$name.log" 2>&1; then
        echo "FAILED: $name (see $out/$name.log and $out/crashes/$name/)"
        tail -30 "$out/$name.log"
        status=1
    fi
done
exit $status

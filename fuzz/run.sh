#!/usr/bin/env bash
# Run every atheris harness under fuzz/ for a bounded time: fuzz/run.sh SECONDS (default 30 each).
# Seeds come from fuzz/_seeds.py; corpora and crash files go under build/fuzz/. Exits non-zero
# if any harness finds an input that raises anything but RemoteProtocolError (or differs when
# fed in chunks). Harnesses are single-threaded, so as many run at once as there are cores
# (FUZZ_JOBS overrides): each still fuzzes for SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
jobs="${FUZZ_JOBS:-$(nproc)}"
export py=.venv/bin/python out=build/fuzz seconds
mkdir -p "$out"
PYTHONPATH=. $py fuzz/_seeds.py "$out/corpus"

run_one() {
    local harness=$1 name
    name=$(basename "$harness" .py)
    mkdir -p "$out/corpus/$name" "$out/crashes/$name"
    echo "== $name (${seconds}s)"
    if ! $py "$harness" "$out/corpus/$name" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=10 -artifact_prefix="$out/crashes/$name/" -print_final_stats=1 \
        >"$out/$name.log" 2>&1; then
        # One block per failure, written at once, so parallel harnesses do not interleave it.
        printf 'FAILED: %s (see %s and %s)\n%s\n' "$name" "$out/$name.log" \
            "$out/crashes/$name/" "$(tail -30 "$out/$name.log")"
        return 1
    fi
}
export -f run_one

# xargs exits non-zero if any harness did; every harness still runs.
printf '%s\n' fuzz/rfb_*.py | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}

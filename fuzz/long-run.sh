#!/usr/bin/env bash
# The documented long run (fuzz/README.md): each target, one after another, at
# nice 19, until RUNS executions or MAX_SECONDS, whichever comes first.
# Usage: fuzz/long-run.sh [RUNS] [MAX_SECONDS] [TARGET...]
#   defaults: 10000000 executions, 0 = no time limit, all five targets.
# Grown corpora stay in fuzz/target/long-corpus/<target> (not committed) and
# are reused by the next long run; crashes go to fuzz/artifacts/<target>/.
# Prints one summary line per target; the full logs are in fuzz/target/long-logs/.
# FUZZ_WORKER=N names a second (third, ...) concurrent run of the same target
# on another core: it shares the corpus and writes <target>.wN.log.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
runs="${1:-10000000}"
max_seconds="${2:-0}"
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(request_parse events_parse directive snapshot_parse planners)

export PATH="$root/.tools/cargo/bin:$PATH" RUSTC_BOOTSTRAP=1
(cd "$root" && cargo fuzz build -s none --codegen-units 16 >&2)
bin_dir="$fuzz/target/x86_64-unknown-linux-gnu/release"
mkdir -p "$fuzz/target/long-logs"
# `nice` alone does not yield where the kernel schedules by session
# (sched_autogroup, the default on desktop and many VM kernels): a fuzzer
# would still take an equal share against a build in another session. So
# each fuzzer gets its own session whose autogroup is niced to 19 as well.
low_priority() {
    setsid --wait sh -c 'echo 19 >/proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' sh "$@"
}
status=0
for target in "${targets[@]}"; do
    corpus="$fuzz/target/long-corpus/$target"
    log="$fuzz/target/long-logs/$target${FUZZ_WORKER:+.w$FUZZ_WORKER}.log"
    mkdir -p "$corpus" "$fuzz/artifacts/$target"
    start=$(date +%s)
    rc=0
    low_priority "$bin_dir/$target" -runs="$runs" -max_total_time="$max_seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$fuzz/artifacts/$target/" \
        "$corpus" "$fuzz/corpus/$target" >"$log" 2>&1 || rc=$?
    done_runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n1)"
    printf '%-15s exit=%s runs=%s exec/s=%s seconds=%s %s\n' "$target" "$rc" "${done_runs:-?}" \
        "${speed:-?}" "$(( $(date +%s) - start ))" "$cov"
    [ "$rc" -eq 0 ] || status=1
done
exit "$status"

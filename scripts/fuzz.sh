#!/usr/bin/env bash
# Runs the libFuzzer targets that `make fuzz-build` put in DIR/fuzz/.
#   fuzz.sh run DIR    each target FUZZ_SECONDS (default 60), FUZZ_JOBS (default 2)
#                      at a time, on its committed corpus tests/fuzz/corpus/<name>
#                      (only read) and DIR/corpus/<name> (where new inputs go);
#                      crashing inputs are written to DIR/crashes/<name>-*
#   fuzz.sh smoke DIR  replays each committed corpus once (-runs=0)
# Logs are in DIR/logs/. Exits 1 when any target crashed.
set -u
mode=${1:?run or smoke} dir=${2:?build directory}
src=tests/fuzz
mkdir -p "$dir/logs" "$dir/crashes"

targets=()
for bin in "$dir"/fuzz/fuzz_*; do
    [ -x "$bin" ] && [ "${bin%.d}" = "$bin" ] && targets+=("${bin##*/fuzz_}")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $dir/fuzz" >&2; exit 1; }

# One target's run; the exit status is libFuzzer's (non-zero: it found something).
run_one() {
    local name=$1 dict=()
    [ -f "$src/$name.dict" ] && dict=(-dict="$src/$name.dict")
    mkdir -p "$dir/corpus/$name" "$src/corpus/$name"
    find "$dir/corpus/$name" -type f | wc -l >"$dir/logs/$name.before"
    "$dir/fuzz/fuzz_$name" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$dir/crashes/$name-" "${dict[@]}" \
        "$dir/corpus/$name" "$src/corpus/$name" >"$dir/logs/$name.log" 2>&1
    echo $? >"$dir/logs/$name.rc"
}

status=0
if [ "$mode" = smoke ]; then
    for name in "${targets[@]}"; do
        mkdir -p "$src/corpus/$name"
        n=$(find "$src/corpus/$name" -type f | wc -l)
        if "$dir/fuzz/fuzz_$name" -runs=0 "$src/corpus/$name" >"$dir/logs/$name.smoke" 2>&1; then
            printf 'fuzz-smoke %-12s %4d inputs ok\n' "$name" "$n"
        else
            printf 'fuzz-smoke %-12s FAILED, see %s\n' "$name" "$dir/logs/$name.smoke"
            grep -E 'ERROR|Assertion|runtime error|SUMMARY' "$dir/logs/$name.smoke" | head -5
            status=1
        fi
    done
    exit $status
fi

[ "$mode" = run ] || { echo "fuzz: unknown mode $mode" >&2; exit 2; }
jobs_max=${FUZZ_JOBS:-2}
for name in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
    echo "fuzz: $name for ${FUZZ_SECONDS:-60} s"
    run_one "$name" &
done
wait

printf '%-12s %12s %8s  %s\n' target executions new result
for name in "${targets[@]}"; do
    log="$dir/logs/$name.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    new=$(($(find "$dir/corpus/$name" -type f | wc -l) - $(cat "$dir/logs/$name.before")))
    if [ "$(cat "$dir/logs/$name.rc")" = 0 ]; then
        result=ok
    else
        result="FOUND: $(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -1) (log $log)"
        status=1
    fi
    printf '%-12s %12s %8s  %s\n' "$name" "${execs:-?}" "$new" "$result"
done
exit $status

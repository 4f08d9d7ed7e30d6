#!/usr/bin/env bash
# Runs every fuzz target in turn (or the ones named as arguments), each for FUZZ_SECONDS
# (default 60) or until FUZZ_RUNS inputs when that is set, on a corpus seeded from the
# repository's files (seed-corpus.sh). Prints each target's executions and any crash, and
# exits 1 if a target crashed. `make fuzz` calls it; see README.md for the toolchain.
set -uo pipefail

fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz_dir"

seconds="${FUZZ_SECONDS:-60}"
runs="${FUZZ_RUNS:-}"
# No sanitizer: kindlab forbids unsafe code, and without ASan each target runs several times
# faster. FUZZ_BUILD_FLAGS="" brings AddressSanitizer back (that needs a nightly toolchain).
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS:--s none --codegen-units 16}"
# Each input must finish within this many seconds; a slower one is reported as a hang.
timeout="${FUZZ_TIMEOUT:-10}"

command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 4
}

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

./seed-corpus.sh >/dev/null
echo "building ${#targets[@]} fuzz targets (cargo fuzz build ${build_flags[*]})"
cargo fuzz build "${build_flags[@]}" || exit 1

limit=(-max_total_time="$seconds")
[ -n "$runs" ] && limit=(-runs="$runs")

mkdir -p logs
summary=()
failed=0
for target in "${targets[@]}"; do
  log="logs/$target.log"
  echo "== $target: $([ -n "$runs" ] && echo "$runs inputs" || echo "${seconds}s") (log: fuzz/$log)"
  start=$(date +%s%N)
  cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" -- \
    "${limit[@]}" -timeout="$timeout" -print_final_stats=1 >"$log" 2>&1
  status=$?
  elapsed=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  execs="${execs:-0}"
  # libFuzzer's own count of its seconds, without cargo's start-up (or a rebuild).
  fuzzed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  [ -n "$fuzzed" ] && [ "$fuzzed" -gt 0 ] && elapsed="$fuzzed"
  rate=$(awk -v n="$execs" -v t="$elapsed" 'BEGIN { printf "%d", (t > 0 ? n / t : 0) }')
  if [ "$status" -eq 0 ]; then
    result="ok"
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    why=$(grep -m1 -E "panicked at|ERROR: libFuzzer: (timeout|out-of-memory|deadly signal)" "$log" | cut -c1-160)
    result="CRASH ${why:-exit $status} -> fuzz/${artifact#./}"
    sed -n '/panicked at/,/^note:/p' "$log" | head -n 20
  fi
  line=$(printf '%-22s %6.0fs %12s execs %8s/s  %s' "$target" "$elapsed" "$execs" "$rate" "$result")
  echo "$line"
  summary+=("$line")
done

echo
echo "target                    time        executions     rate  result"
printf '%s\n' "${summary[@]}"
exit "$failed"

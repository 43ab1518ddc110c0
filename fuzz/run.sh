#!/usr/bin/env bash
# Builds a fuzz target (release, libFuzzer + AddressSanitizer) and fuzzes it for a bounded time over a
# copy of its seed corpus: DNSParserFuzzer (WeftCore's DNS codec, the default) or HTTP1ParserFuzzer
# (WeftCore's HTTP/1.1 framing, which the proxy's http listeners run). Exits non-zero when libFuzzer
# finds a crash, a timeout or an out-of-memory input; the input stays in fuzz/out/TARGET/crashes/ and
# its path and hex are printed.
#
#   fuzz/run.sh [--target dns|http] [--seconds N] [--jobs N] [--skip-build] [-- extra libFuzzer flags]
#
# --seconds  how long each job fuzzes (default 60)
# --jobs     parallel fuzzing processes sharing the corpus (default 1)
# Anything after `--` goes to libFuzzer as is (e.g. -seed=1 -use_value_profile=1).
# See fuzz/README.md for long runs.
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$(pwd)

seconds=60
jobs=1
build=1
target=dns
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --skip-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$target" in
  dns) product=DNSParserFuzzer corpus="$fuzz_dir/corpus" dict="$fuzz_dir/dns.dict" ;;
  http) product=HTTP1ParserFuzzer corpus="$fuzz_dir/corpus-http" dict="$fuzz_dir/http.dict" ;;
  *) echo "run.sh: --target takes dns or http" >&2; exit 2 ;;
esac
case "$seconds$jobs" in *[!0-9]*) echo "run.sh: --seconds and --jobs take whole numbers" >&2; exit 2 ;; esac

if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH=/opt/swift/usr/bin:$PATH
fi

scratch="$fuzz_dir/.build"
if [ "$build" = 1 ]; then
  start=$(date +%s)
  # --sanitize=fuzzer makes SwiftPM compile the target as a library and leave main() to libFuzzer. The
  # sanitizers themselves go in as one combined flag: given `--sanitize=fuzzer --sanitize=address`, the
  # Swift 6.3 driver keeps only the last one, and the code gets no coverage instrumentation.
  swift build -c release --package-path "$fuzz_dir" --scratch-path "$scratch" \
    --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product "$product"
  echo "run.sh: built $product in $(( $(date +%s) - start ))s"
fi
fuzzer="$(swift build -c release --package-path "$fuzz_dir" --scratch-path "$scratch" --show-bin-path)/$product"
[ -x "$fuzzer" ] || { echo "run.sh: $fuzzer is missing; run without --skip-build" >&2; exit 1; }

# The working corpus keeps what earlier runs found; the seeds are copied in on every run.
out="$fuzz_dir/out/$target"
mkdir -p "$out/corpus" "$out/crashes" "$out/logs"
cp "$corpus"/* "$out/corpus/"
marker="$out/logs/.started"
touch "$marker"

# Swift's own crash backtracer would race libFuzzer's and ASan's handlers; let those report.
export SWIFT_BACKTRACE=enable=no

flags=(
  -max_len=65535 -timeout=5 -rss_limit_mb=2048 -max_total_time="$seconds"
  -dict="$dict" -artifact_prefix="$out/crashes/" -print_final_stats=1
)
echo "run.sh: fuzzing for ${seconds}s with $jobs job(s); corpus $out/corpus"
status=0
if [ "$jobs" -gt 1 ]; then
  # Each job writes fuzz-<n>.log in the current directory.
  (cd "$out/logs" && "$fuzzer" "${flags[@]}" -jobs="$jobs" -workers="$jobs" ${extra[@]+"${extra[@]}"} "$out/corpus") || status=$?
  tail -n 15 "$out"/logs/fuzz-*.log
else
  set +e
  "$fuzzer" "${flags[@]}" ${extra[@]+"${extra[@]}"} "$out/corpus" 2>&1 | tee "$out/logs/fuzz.log"
  status=${PIPESTATUS[0]}
  set -e
fi

found=()
while IFS= read -r file; do found+=("$file"); done < <(find "$out/crashes" -type f -newer "$marker")
if [ "$status" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
  echo "run.sh: libFuzzer exited with status $status" >&2
  for file in ${found[@]+"${found[@]}"}; do
    echo "run.sh: crashing input $file ($(wc -c < "$file") bytes):" >&2
    od -An -v -tx1 "$file" | tr -d ' \n' | fold -w 128 >&2
    echo >&2
  done
  echo "run.sh: reproduce with: $fuzzer <file>" >&2
  exit 1
fi
echo "run.sh: no crashes in ${seconds}s; corpus now $(ls "$out/corpus" | wc -l) inputs"

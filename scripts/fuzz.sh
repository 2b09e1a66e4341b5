#!/usr/bin/env bash
# Builds the libFuzzer targets (the sanitize preset: clang, ASan + UBSan), writes their seed
# corpora (tests/fuzz/make_seeds.py, fuzz_log_seed) and runs each for a fixed time or number of
# executions, then prints one line per target: executions, seconds, crashes. Exit 1 if any
# target crashed (its input is kept under build-sanitize/fuzz/artifacts/), 2 on setup errors.
#
#   bash scripts/fuzz.sh [--seconds N | --runs N] [--seed N] [TARGET...]
#   --seed: libFuzzer's random seed (default 1, so a run repeats; 0: from the clock)
#   targets: scenario safetensors torch_zip tokenizer image tar log (default: all)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CLIPREPRO_ROOT}"
budget=(-max_total_time=15)
seed=1
targets=()
while (($#)); do
  case "$1" in
    --seconds) budget=(-max_total_time="$2"); shift 2 ;;
    --runs) budget=(-runs="$2"); shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(scenario safetensors torch_zip tokenizer image tar log)

install_debian_packages "${CLIPREPRO_SANITIZE_PACKAGES[@]}"
[ -x "${CLIPREPRO_PYTHON}" ] || bash scripts/setup.sh cliprepro
export CLIPREPRO_TORCH_PREFIX="$("${CLIPREPRO_PYTHON}" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
build=build-sanitize
[ -f "${build}/CMakeCache.txt" ] ||
  cmake --preset sanitize -DCLIPREPRO_PYTHON="${CLIPREPRO_PYTHON}" >/dev/null
echo "[fuzz] building ${targets[*]/#/fuzz_} (clang, ASan + UBSan)"
cmake --build "${build}" -j2 --target "${targets[@]/#/fuzz_}" fuzz_log_seed

work="${build}/fuzz"
rm -rf "${work}/seeds"
"${CLIPREPRO_PYTHON}" tests/fuzz/make_seeds.py "${work}/seeds" .
"${build}/tests/fuzz/fuzz_log_seed" "${work}/seeds/log"
mkdir -p "${work}/artifacts"
# The tokenizer reads open_clip's vocabulary; asking Python once per process is slow.
export CLIPREPRO_BPE_VOCAB="${CLIPREPRO_BPE_VOCAB:-$("${CLIPREPRO_PYTHON}" -c \
  'import open_clip, os; print(os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz"))')}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="suppressions=${CLIPREPRO_ROOT}/tests/fuzz/lsan.supp"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}"

# tokenizer: captions are short, and BPE on a long word costs quadratic time under ASan.
# log: libhdf5 leaks on every damaged file (lsan.supp); a leak check after each such input
# scanned the whole heap and cut the rate from thousands to 5 inputs a second.
# torch_zip likewise: LibTorch's zip reader leaks on every malformed zip (lsan.supp).
declare -A extra=([tokenizer]="-max_len=128" [log]="-detect_leaks=0" [torch_zip]="-detect_leaks=0")
failed=0
summary=()
for t in "${targets[@]}"; do
  corpus="${work}/corpus/${t}"
  mkdir -p "${corpus}"
  cp "${work}/seeds/${t}"/* "${corpus}/"
  # Inputs that once crashed a target stay in its corpus (tests/fuzz/regressions/<target>-*).
  cp tests/fuzz/regressions/"${t}"-* "${corpus}/" 2>/dev/null || true
  start=$(date +%s)
  rc=0
  # -timeout: an input taking 10 s is a hang; -malloc_limit_mb: one allocation above 1 GiB is a
  # finding (every size a file declares must be bounded before it is allocated).
  "${build}/tests/fuzz/fuzz_${t}" "${budget[@]}" -timeout=10 -rss_limit_mb=3072 \
    -malloc_limit_mb=1024 -print_final_stats=1 -seed="${seed}" ${extra[$t]:-} \
    -artifact_prefix="${work}/artifacts/${t}-" "${corpus}" >"${work}/${t}.log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${work}/${t}.log" | tail -1)
  crashes=0
  if ((rc != 0)); then
    crashes=1
    failed=1
    grep -E "ERROR|SUMMARY|terminate|Test unit written" "${work}/${t}.log" | head -5 >&2 || true
  fi
  summary+=("$(printf '%-12s %12s %8s %8s   %s' "${t}" "${runs:-?}" "$(( $(date +%s) - start ))" \
    "${crashes}" "$(ls "${corpus}" | wc -l) inputs")")
done
printf '%-12s %12s %8s %8s   %s\n' target executions seconds crashes corpus
printf '%s\n' "${summary[@]}"
((failed == 0)) || { echo "[fuzz] a target crashed: see ${work}/<target>.log and ${work}/artifacts/" >&2; exit 1; }

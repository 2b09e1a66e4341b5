#!/usr/bin/env bash
# The device check: one script that proves the GPU path on a lent, bare GPU machine and prints one
# summary table (docs/gpu-check.md).
#
#   bash scripts/gpu_check.sh --pack     here: build, then pack the binaries and the shared libraries
#                                        a bare GPU machine lacks into .gpu/ (carry it)
#   bash scripts/gpu_check.sh            on the GPU machine (the device tool, carry [".gpu"])
#   bash scripts/gpu_check.sh --dry-run  here and in CI: the same checks on the CPU with the tiny
#                                        model and build/'s binaries; GPU-only rows say "skipped"
#
# The GPU machine has torch 2.11+cu130 in its python3 but no HDF5 headers and no network, so the
# binaries are built here (same torch, same CUDA major) and carried with their libraries; the
# test binary's compiled-in paths (/work/main, the venv's python) are recreated there as links.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-gpu}"
case "${MODE}" in --pack | --dry-run | gpu) ;; *) sed -n '2,13p' "$0"; exit 2 ;; esac
PACK="${ROOT}/.gpu"

if [ "${MODE}" = --pack ]; then
  set -e
  bash "${ROOT}/scripts/setup.sh" cliprepro cliprepro_tests dist_worker cliprepro_digest >/dev/null
  rm -rf "${PACK}" && mkdir -p "${PACK}/stage/bin" "${PACK}/stage/lib"
  for b in cliprepro tests/cliprepro_tests tests/dist_worker libcliprepro_digest.so; do
    strip --strip-unneeded -o "${PACK}/stage/bin/$(basename "$b")" "${ROOT}/build/$b"
  done
  # Every library the binaries load but torch's own folder and the C runtime (libc, libstdc++:
  # the GPU machine's are newer and backward compatible).
  ldd "${ROOT}/build/cliprepro" "${ROOT}/build/tests/cliprepro_tests" \
    "${ROOT}/build/libcliprepro_digest.so" | awk '/=> \//{print $3}' |
    grep -v -E '/torch/lib/|/(libc|libm|libpthread|librt|libdl|libutil|libresolv|libstdc\+\+|libgcc_s)\.so' |
    sort -u | xargs -I{} cp -L {} "${PACK}/stage/lib/"
  tar -C "${PACK}/stage" -cJf "${PACK}/pack.tar.xz" bin lib && rm -rf "${PACK}/stage"
  # OpenCLIP for its own step's speed and the recorder (pure-Python wheels; the GPU image has
  # torch, torchvision, timm, regex, pandas, h5py, ml-dtypes, xxhash, PyYAML).
  source "${ROOT}/scripts/env.sh"
  "${CLIPREPRO_PYTHON}" -m pip download -q --no-deps -d "${PACK}/whl" open_clip_torch==3.3.0 \
    ftfy==6.3.1 wcwidth==0.9.4 webdataset==0.2.86 braceexpand==0.1.7
  echo "[gpu_check] packed $(du -sh "${PACK}" | cut -f1) into .gpu/ (commit $(git -C "${ROOT}" rev-parse --short HEAD))"
  exit 0
fi

if [ "${MODE}" = gpu ]; then
  [ -f "${PACK}/pack.tar.xz" ] || { echo "no .gpu/pack.tar.xz: run 'bash scripts/gpu_check.sh --pack' here and carry .gpu"; exit 2; }
  mkdir -p /tmp/gpu && tar -C /tmp/gpu -xJf "${PACK}/pack.tar.xz"
  mkdir -p "${ROOT}/build/tests" && cp /tmp/gpu/bin/cliprepro "${ROOT}/build/" &&
    cp /tmp/gpu/bin/cliprepro_tests /tmp/gpu/bin/dist_worker "${ROOT}/build/tests/" &&
    cp /tmp/gpu/bin/libcliprepro_digest.so "${ROOT}/build/"  # the recorder's (native.py)
  [ -e /work/main ] || { mkdir -p /work && ln -s "${ROOT}" /work/main; }
  PY="$(command -v python3)"
  mkdir -p /opt/cliprepro/venv-torch-2.11.0/bin && ln -sf "${PY}" /opt/cliprepro/venv-torch-2.11.0/bin/python
  # Only the libraries this machine lacks: its own (newer) ones stay first for everything else.
  for f in /tmp/gpu/lib/*; do ldconfig -p | grep -q " $(basename "$f") " && rm -f "$f"; done
  "${PY}" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${PACK}"/whl/*.whl &&
    export PYTHONPATH=/tmp/site
  TORCH_LIB="$("${PY}" -c 'import os, torch; print(os.path.dirname(torch.__file__) + "/lib")')"
  export LD_LIBRARY_PATH="/tmp/gpu/lib:${TORCH_LIB}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
  DEVICE=cuda MODEL=RN50 BATCH=128 STEPS=20
else
  [ -x "${ROOT}/build/cliprepro" ] || bash "${ROOT}/scripts/setup.sh" cliprepro cliprepro_tests >/dev/null
  source "${ROOT}/scripts/env.sh"
  PY="${CLIPREPRO_PYTHON}"
  DEVICE=cpu MODEL=tiny BATCH=8 STEPS=6
fi
export PYTHONPATH="${ROOT}/python${PYTHONPATH:+:${PYTHONPATH}}"
export CLIPREPRO_DIGEST_LIBRARY="${ROOT}/build/libcliprepro_digest.so"
CLI="${ROOT}/build/cliprepro"
WORK=/tmp/gpu-check-work && rm -rf "${WORK}" && mkdir -p "${WORK}"  # logs stay there; $OUT gets the table
ROWS="${WORK}/rows.tsv" && : >"${ROWS}"
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"${ROWS}"; echo "[gpu_check] $1: $2 $3"; }

scenario() {  # NAME PRECISION DETERMINISTIC [extra top-level lines]
  cat >"${WORK}/$1.toml" <<EOF
name = "$1"
model = "${MODEL}"
device = "${DEVICE}"
precision = "$2"
train-num-samples = $((BATCH * STEPS))
batch-size = ${BATCH}
steps = ${STEPS}
warmup = 4
lr = 1e-3
seed = 7
zeroshot-frequency = 0
${4:-}
[determinism]
deterministic = $3
[log]
digest-every = 1
EOF
  echo "${WORK}/$1.toml"
}
run_log() { "${CLI}" run "$1" --out "${WORK}/out" --no-golden 2>&1; }

# 1. The CUDA cases of the test suite and the device branch of the digest test.
t="$("${ROOT}/build/tests/cliprepro_tests" --gtest_filter='Cuda.*:DigestStats.DeviceDigestIsXxh3' 2>&1)"
pass=$(grep -c '^\[       OK \]' <<<"$t"); skip=$(grep -c '^\[  SKIPPED \]' <<<"$t"); fail=$(grep -c '^\[  FAILED  \]' <<<"$t")
row "CUDA test cases" "$([ "$fail" = 0 ] && echo pass || echo FAIL)" "${pass} passed, ${skip} skipped (no GPU where skipped), ${fail} failed"

# 2-4. Two runs of each precision: every tensor at every step bitwise equal.
for p in fp32 amp amp_bf16; do
  for r in a b; do run_log "$(scenario "repro_${p}_$r" "$p" true)" >"${WORK}/repro_${p}_$r.txt"; done
  c="$("${CLI}" compare "${WORK}/out/repro_${p}_a.h5" "${WORK}/out/repro_${p}_b.h5" 2>&1 | head -1)"
  row "${MODEL} ${p} x2 bitwise" "$(grep -q '^MATCH' <<<"$c" && echo pass || echo FAIL)" "$c"
done

# 5. Images/s from the progress lines: steady state between step STEPS/5 and the last step.
speed() {  # LOG.txt -> images/s
  awk -v b="${BATCH}" -v s1="$((STEPS / 5))" '
    / step [0-9]+\/[0-9]+ / { for (i = 1; i <= NF; ++i) { if ($i == "step") split($(i+1), a, "/");
                                                        if ($(i+1) == "step/s") r = $i }
                              s = a[1]; if (s == s1) e1 = s / r; e2 = s / r; last = s }
    END { if (e2 > e1 && last > s1) printf "%.1f", b * (last - s1) / (e2 - e1); else print "n/a" }' "$1"
}
declare -A IPS
for p in fp32 amp amp_bf16; do
  for det in true false; do
    log="${WORK}/speed_${p}_${det}.txt"
    run_log "$(scenario "speed_${p}_${det}" "$p" "$det")" >"${log}"
    IPS[$p,$det]="$(speed "${log}")"
  done
  ratio="$(awk -v a="${IPS[$p,true]}" -v b="${IPS[$p,false]}" 'BEGIN{ if (a > 0 && b > 0) printf "%.3f", b / a; else print "n/a" }')"
  row "${MODEL} b${BATCH} ${p} images/s" "${IPS[$p,true]} det / ${IPS[$p,false]} non-det" "deterministic step time x${ratio} (goal <= 1.05)"
done

# 6. OpenCLIP's own step (Python) on the same device, model and batch, its default settings.
o="$("${PY}" "${ROOT}/scripts/openclip_step_speed.py" --model "${MODEL}" --batch "${BATCH}" --device "${DEVICE}" \
     --steps "${STEPS}" 2>&1 | grep -E '^(fp32|amp|amp_bf16) [0-9.]+$')"
for p in fp32 amp amp_bf16; do
  v="$(awk -v p="$p" '$1 == p {print $2}' <<<"$o")"
  ratio="$(awk -v a="${IPS[$p,false]}" -v b="$v" 'BEGIN{ if (a > 0 && b > 0) printf "%.3f", a / b; else print "n/a" }')"
  row "OpenCLIP ${p} images/s" "${v:-n/a}" "cliprepro (non-det) / OpenCLIP = ${ratio} (goal >= 1.0)"
done

# 7. The recorder's cost: OpenCLIP's own run plain and recorded (python -m cliprepro.record), in
# alternating repetitions, digests every step and every 10th (scripts/bench_recorder.py).
if [ "${DEVICE}" = cuda ]; then
  bench=(--cases rn50-amp-b128 --reps 2 --steps 10 --workers 4 --threads 4 --device cuda)
else
  bench=(--cases tiny --reps 1 --steps 4 --device cpu)
fi
b="$("${PY}" "${ROOT}/scripts/bench_recorder.py" "${bench[@]}" --digest-every 1,10 2>&1)"
for n in 1 10; do
  l="$(awk -v n="$n" 'NR > 1 && $2 == n' <<<"$b")"
  if [ -n "$l" ]; then
    row "Recorder ${bench[1]} digest-every ${n}" "$(awk '{print "plain " $3 " / recorded " $5 " s/step"}' <<<"$l")" \
      "recorded / plain = $(awk '{print $7}' <<<"$l") (median of ${bench[3]} alternating repetitions)"
  else
    row "Recorder ${bench[1]} digest-every ${n}" "FAIL" "$(tail -1 <<<"$b")"
  fi
done

# 8. NCCL at world size 1 (torchrun), on the GPU only.
if [ "${DEVICE}" = cuda ]; then
  s="$(scenario nccl1 fp32 true 'dist-backend = "nccl"')"
  n="$("${PY}" -m torch.distributed.run --standalone --nproc-per-node 1 --no-python "${CLI}" run "$s" \
       --out "${WORK}/out" --no-golden -q 2>&1)"
  rc=$?
  row "NCCL world size 1" "$([ "$rc" = 0 ] && [ -f "${WORK}/out/nccl1.h5" ] && echo pass || echo FAIL)" "$(tail -1 <<<"$n")"
else
  row "NCCL world size 1" "skipped" "dry run: no GPU"
fi

echo
echo "| check | result | detail |"
echo "|---|---|---|"
awk -F'\t' '{printf "| %s | %s | %s |\n", $1, $2, $3}' "${ROWS}"
[ -n "${OUT:-}" ] && awk -F'\t' '{printf "| %s | %s | %s |\n", $1, $2, $3}' "${ROWS}" >"${OUT}/gpu_check.md"
! grep -q $'\tFAIL\t' "${ROWS}"

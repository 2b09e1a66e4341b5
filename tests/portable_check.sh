#!/usr/bin/env bash
# One golden for every x86-64 CPU: runs a portable scenario natively and under qemu-x86_64 with
# another CPU's identity (vendor, model, features: CPUID), and requires the two logs to be
# bitwise equal (cliprepro compare, exit 0). The emulated run's log must name the emulated CPU,
# so a run that left the emulator cannot pass. A missing emulator fails; it never skips.
#
#   tests/portable_check.sh CLIPREPRO SCENARIO SCRATCH_DIR CPU_MODEL [NPROC | refused]
#
# `refused`: CPU_MODEL lacks AVX2 or FMA, and the run must be refused (exit 2, saying why).
#
# NPROC > 1 launches the ranks itself (RANK, WORLD_SIZE, MASTER_PORT, ...), each under the
# emulator: torchrun would start them with execve, which qemu-user does not follow.
set -euo pipefail
cliprepro=$1
scenario=$2
tmp=$3
cpu=$4
nproc=${5:-1}
if ! command -v qemu-x86_64 >/dev/null; then
  echo "qemu-x86_64 is missing: scripts/setup.sh installs Debian's qemu-user" >&2
  exit 1
fi
rm -rf "${tmp}"
mkdir -p "${tmp}"
# cliprepro re-executes itself unless this is set, and qemu-user does not follow execve.
export OMP_WAIT_POLICY=PASSIVE

launch() {  # OUT_DIR [EMULATOR...]
  local out=$1
  shift
  if [ "${nproc}" -eq 1 ]; then
    "$@" "${cliprepro}" run "${scenario}" --out "${out}" --no-golden --quiet
    return
  fi
  local port=$((20000 + RANDOM % 20000)) pids=() r
  for ((r = 0; r < nproc; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=${nproc} LOCAL_WORLD_SIZE=${nproc} MASTER_ADDR=127.0.0.1 \
      MASTER_PORT=${port} "$@" "${cliprepro}" run "${scenario}" --out "${out}" --no-golden \
      --quiet &
    pids+=($!)
  done
  for r in "${pids[@]}"; do wait "${r}"; done
}

if [ "${nproc}" = refused ]; then
  set +e
  out=$(qemu-x86_64 -cpu "${cpu}" "${cliprepro}" run "${scenario}" --out "${tmp}/emulated" \
    --no-golden --quiet 2>&1 | grep -v "TCG doesn't support")
  rc=${PIPESTATUS[0]}
  set -e
  echo "${out}"
  [ "${rc}" -eq 2 ] && grep -q "needs a CPU with AVX2 and FMA" <<<"${out}" && exit 0
  echo "a CPU without AVX2/FMA (${cpu}) was not refused (exit ${rc})" >&2
  exit 1
fi
start=$(date +%s)
launch "${tmp}/native"
native_s=$(($(date +%s) - start))
start=$(date +%s)
launch "${tmp}/emulated" qemu-x86_64 -cpu "${cpu}" 2> >(grep -v "TCG doesn't support" >&2)
emulated_s=$(($(date +%s) - start))

cpu_of() {  # the "model" and "vendor" the log's fingerprint records (CPUID's)
  grep -a -o -E '"(vendor|model)": "[^"]*"' "$1" | head -2 | tr '\n' ' '
}
status=0
for log in "${tmp}"/native/*.h5; do
  name=$(basename "${log}")
  emulated="${tmp}/emulated/${name}"
  echo "native:   $(cpu_of "${log}")(${native_s} s)"
  echo "emulated: $(cpu_of "${emulated}")(${emulated_s} s, qemu-x86_64 -cpu ${cpu})"
  if [ "$(cpu_of "${log}")" = "$(cpu_of "${emulated}")" ]; then
    echo "the emulated run recorded this machine's CPU: it did not run under ${cpu}" >&2
    status=1
  fi
  "${cliprepro}" compare "${emulated}" "${log}" --max-rows 5 || status=1
done
exit "${status}"

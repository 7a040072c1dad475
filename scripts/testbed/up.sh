#!/usr/bin/env bash
# Start the testbed services the tests use, one after another.
#
#   scripts/testbed/up.sh [slurm] [sge] [ssh] [podman]    (default: all)
#
# Each service is tried even when an earlier one failed; the exit status is the
# number of services that could not start (0: all up). A summary with each
# service's time closes the output.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
services=${*:-slurm sge ssh podman}
failed=()
summary=()
for svc in $services; do
  case $svc in
  slurm | sge | ssh | podman) ;;
  *)
    echo "up.sh: unknown service '$svc' (known: slurm sge ssh podman)" >&2
    exit 100
    ;;
  esac
  t0=$(date +%s.%N)
  if bash "$here/$svc.sh"; then
    state=up
  else
    state=FAILED
    failed+=("$svc")
  fi
  dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  summary+=("$(printf '%-7s %-6s %6ss' "$svc" "$state" "$dt")")
done
echo "testbed:"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "testbed: NOT STARTED: ${failed[*]} (tests needing them will be skipped)" >&2
fi
exit ${#failed[@]}

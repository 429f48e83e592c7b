#!/usr/bin/env bash
# The harness (regress/lib/cluster.sh) as the benchmarks and tools use it:
# under `set -euo pipefail`, where a failing command ends the script without
# a word. A fresh instance starts, answers, stops and starts again.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/tap.sh
out=$(bash -c 'set -euo pipefail
  source regress/lib/cluster.sh
  trap "instance_stop harness >/dev/null 2>&1 || true" EXIT
  instance_init harness 24318 1 h-east >/dev/null
  instance_start harness
  instance_psql harness -d postgres -At -c "SELECT 41 + 1"
  instance_stop harness
  instance_start harness
  instance_psql harness -d postgres -At -c "SELECT 42 + 1"' 2>&1)
is "$out" "$(printf '42\n43')" "under set -euo pipefail a fresh instance starts, answers, and starts again after a stop"
done_testing

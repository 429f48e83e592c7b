# The start of every cluster test (regress/cluster/*.t), sourced from it:
# the harness, TAP, a scratch directory $work, and a mesh (and the
# instances named in CLEANUP_INSTANCES) that go down when the script ends,
# also when prove is interrupted (KEEP_INSTANCES=1 keeps them up for a look).
set -u
cd "$(dirname "$0")/../.."
source regress/lib/cluster.sh
source regress/lib/mesh.sh
source regress/lib/tap.sh
work=$(mktemp -d)
CLEANUP_INSTANCES=()
cluster_test_cleanup() {
  local i
  mesh_down
  for i in "${CLEANUP_INSTANCES[@]}"; do instance_stop "$i" >/dev/null 2>&1; done
  rm -rf "$work"
  return 0
}
[ -n "${KEEP_INSTANCES:-}" ] || trap cluster_test_cleanup EXIT
trap 'exit 143' INT TERM

# run VAR COMMAND...: runs it, its stdout and stderr in $VAR, its exit code in $rc
run() { local var=$1 output; shift; output=$("$@" 2>&1); rc=$?; printf -v "$var" '%s' "$output"; }
# contains TEXT PART: 0 (a passing status for `ok`) when TEXT contains PART
contains() { [[ $1 == *"$2"* ]] && echo 0 || echo 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

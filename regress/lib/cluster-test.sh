# The start of every cluster test (regress/cluster/*.t), sourced from it:
# the harness, TAP, and a mesh that goes down when the script ends, also
# when prove is interrupted (KEEP_INSTANCES=1 keeps it up for a look).
set -u
cd "$(dirname "$0")/../.."
source regress/lib/cluster.sh
source regress/lib/mesh.sh
source regress/lib/tap.sh
[ -n "${KEEP_INSTANCES:-}" ] || trap mesh_down EXIT
trap 'exit 143' INT TERM

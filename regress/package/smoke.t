#!/usr/bin/env bash
# The package installed and tried (tools/deb-smoke): root only, and only when
# asked with CAUSAL_DEB_SMOKE=1, since it installs and removes a package of
# the system (the removal takes the files `make install` put in the same
# places). On a fresh Debian 12 root:
#   make deb && tools/deb-smoke build/*.deb
cd "$(dirname "$0")/../.."
if [ "${CAUSAL_DEB_SMOKE:-}" != 1 ] || [ "$(id -u)" != 0 ]; then
  echo "1..0 # SKIP installs a system package: as root, with CAUSAL_DEB_SMOKE=1"
  exit 0
fi
exec tools/deb-smoke "$(tools/build-deb | tail -n 1)"

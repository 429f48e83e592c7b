#!/usr/bin/env bash
# The Debian package (make deb), as built: what it holds, what it says it
# depends on, and its version. Installing it and trying it is smoke.t's.
set -u
cd "$(dirname "$0")/../.."
source regress/lib/tap.sh

out=$(tools/build-deb 2>&1)
ok $? "tools/build-deb builds the package${out:+: $(tail -n 1 <<<"$out")}"
deb=$(tail -n 1 <<<"$out")
[ -f "$deb" ] || { echo "Bail out! no package"; exit 1; }
version=$(sed -n 's/^EXTVERSION *= *//p' Makefile)
is "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)" "postgresql-15-pg-causal $version-1" \
   "it is postgresql-15-pg-causal, at the extension's version"
is "$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' META.json | head -n 1)" "$version" "META.json has the same version"

files=$(dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); print $6 }')
has() { grep -qxF "$1" <<<"$files" && echo 0 || echo 1; }
ok "$(has /usr/bin/causalctl)" "causalctl is in /usr/bin, on PATH"
ok "$(has /usr/bin/causal-wan)" "causal-wan is in /usr/bin"
ext=$(pg_config --sharedir)/extension
ok "$(has "$(pg_config --pkglibdir)/pg_causal.so")" "the library is where PostgreSQL 15 loads it"
missing=""
steps=$(cd sql/updates/steps && ls ./*--*.sql | grep -v '\.post\.sql$' | sed 's|^\./\([^-]*\)--.*|pg_causal--\1--'"$version"'.sql|')
for f in pg_causal.control "pg_causal--$version.sql" $(cd sql/updates && ls pg_causal--*.sql) $steps; do
  [ "$(has "$ext/$f")" = 0 ] || missing+=" $f"
done
is "$missing" "" "the control file, the install script and every update script are in $ext"
ok "$(has /usr/share/doc/postgresql-15-pg-causal/copyright)" "the license is in the package's copyright file"
missing=""
for f in README.md CONTRIBUTING.md DESIGN.md $(cd docs && ls ./*.md | sed 's|^\./|docs/|'); do
  [ "$(has "/usr/share/doc/postgresql-15-pg-causal/$f")" = 0 ] || missing+=" $f"
done
is "$missing" "" "the README, CONTRIBUTING.md, DESIGN.md and every file of docs/ are in its documentation"

# Every library a binary of the package links directly must come from a
# package in Depends (the others arrive through those).
depends=$(dpkg-deb -f "$deb" Depends | tr -d ' ' | tr ',' '\n')
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dpkg-deb -x "$deb" "$stage"
unmet=""
for binary in "$stage"/usr/bin/* "$stage"/usr/lib/postgresql/15/lib/*.so; do
  for lib in $(objdump -p "$binary" | awk '$1 == "NEEDED" { print $2 }'); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    owner=""
    # dpkg knows a library by the path its package ships, which on a merged
    # /usr may be the link's or the target's
    for candidate in "$path" "$(realpath "$path")" "$(realpath "$path" | sed 's|^/usr/lib/|/lib/|')"; do
      owner=$(dpkg -S "$candidate" 2>/dev/null | head -n 1 | cut -d: -f1)
      [ -n "$owner" ] && break
    done
    [ -n "$owner" ] && grep -qxF "$owner" <<<"$depends" || unmet+=" ${binary##*/}:$lib(${owner:-unowned})"
  done
done
is "$unmet" "" "Depends names the package of every library its binaries link"

done_testing

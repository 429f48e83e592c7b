# TAP from bash, for the cluster tests (prove runs them). Source it.
#   plan N | ok STATUS DESC | is GOT WANT DESC | diag TEXT | done_testing
TAP_COUNT=0 TAP_FAILED=0 TAP_PLANNED=""
plan() { echo "1..$1"; TAP_PLANNED=$1; }
ok() {  # ok 0|nonzero DESC: 0 passes, like an exit status
  TAP_COUNT=$((TAP_COUNT + 1))
  if [ "$1" = 0 ]; then echo "ok $TAP_COUNT - $2"; else echo "not ok $TAP_COUNT - $2"; TAP_FAILED=$((TAP_FAILED + 1)); fi
}
is() {
  TAP_COUNT=$((TAP_COUNT + 1))
  if [ "$1" = "$2" ]; then
    echo "ok $TAP_COUNT - $3"
  else
    echo "not ok $TAP_COUNT - $3"
    printf '#   got:  %s\n#   want: %s\n' "$1" "$2"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}
diag() { printf '# %s\n' "$@"; }
# done_testing: the plan (unless plan gave one), then the exit status
done_testing() {
  [ -n "$TAP_PLANNED" ] || echo "1..$TAP_COUNT"
  [ "$TAP_FAILED" = 0 ] && [ -z "$TAP_PLANNED" -o "$TAP_PLANNED" = "$TAP_COUNT" ]
}

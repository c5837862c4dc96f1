#!/bin/sh
# The README's generated key tables must equal what `retort config CMD` prints now.
# Usage: readme_keys.sh RETORT README [--write]    (--write: regenerate the tables in place)
set -eu
retort=$1 readme=$2 write=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for cmd in $("$retort" config --list); do
  start="<!-- retort config $cmd: generated, checked by tests/scripts/readme_keys.sh -->"
  end="<!-- end retort config $cmd -->"
  awk -v s="$start" -v e="$end" '$0 == e {on = 0} on {print} $0 == s {on = 1}' "$readme" > "$tmp/readme.md"
  "$retort" config "$cmd" > "$tmp/now.md"
  if [ ! -s "$tmp/readme.md" ]; then
    echo "README has no generated table for $cmd (markers '$start' ... '$end')"; status=1
  elif cmp -s "$tmp/readme.md" "$tmp/now.md"; then
    echo "README matches retort config $cmd"
  elif [ "$write" = "--write" ]; then
    awk -v s="$start" -v e="$end" -v f="$tmp/now.md" \
      '$0 == e {on = 0} !on {print} $0 == s {on = 1; while ((getline l < f) > 0) print l}' "$readme" > "$tmp/new"
    cat "$tmp/new" > "$readme"
    echo "README's table for $cmd regenerated"
  else
    echo "README's table for $cmd differs from 'retort config $cmd' (regenerate: $0 RETORT README --write):"
    diff -u "$tmp/readme.md" "$tmp/now.md" || true
    status=1
  fi
done
[ $status -eq 0 ] && echo "README key tables agree"
exit $status

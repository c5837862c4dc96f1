#!/bin/sh
# Every #include "retort/X/..." in src/retort/F/ must name a folder F may include (docs/architecture.md).
set -eu
src="${1:-$(dirname "$0")/../../src/retort}"
allowed() {
  case "$1" in
    core) echo "core" ;;
    io) echo "core io" ;;
    dist) echo "core dist" ;;
    run) echo "core io dist run" ;;
    report) echo "core io dist run report" ;;
    diffusion) echo "core diffusion" ;;
    data) echo "core data" ;;
    models) echo "core io dist diffusion models" ;;
    render) echo "core io dist run data render" ;;
    field) echo "core io render field" ;;
    eval) echo "core io models render eval" ;;
    plot) echo "core io models plot" ;;
    generators | distill) echo "core io dist run diffusion data models render field eval plot $1" ;;
    train) echo "core io dist run diffusion data models render field eval plot generators distill train" ;;
    image | text3d | nvs) echo "core io dist run diffusion data models render field eval plot generators distill train $1" ;;
    text2d) echo "core io dist run diffusion data models render field eval plot generators distill train image text2d" ;;
    bench) echo "core io dist run diffusion data models render field eval plot generators distill train image nvs text3d bench" ;;
    cli) echo "*" ;;
    *) echo "unknown" ;;
  esac
}
bad=0
for dir in "$src"/*/; do
  f=$(basename "$dir")
  ok=$(allowed "$f")
  if [ "$ok" = unknown ]; then echo "src/retort/$f: a folder docs/architecture.md does not place"; bad=1; continue; fi
  [ "$ok" = "*" ] && continue
  for file in "$dir"*; do
    grep -o '#include "retort/[a-z0-9_]*/' "$file" | sed 's#.*retort/##; s#/##' | sort -u | while read -r dep; do
      case " $ok " in *" $dep "*) ;; *) echo "$file includes retort/$dep/: $f may include only: $ok"; exit 1 ;; esac
    done || bad=1
  done
done
[ $bad = 0 ] && echo "layers ok"
exit $bad

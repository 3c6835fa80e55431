#!/usr/bin/env bash
# run_corpus.sh CPUDIFF ENGINE MODE FILE...: runs corpus files on one engine
# against their recorded expectations; exit 0 only if every case agrees.
# Exits 77 (skipped, with the reason) when a file or the engine is missing.
set -u
cpudiff=$1 engine=$2 mode=$3
shift 3
for f in "$@"; do
  if [ ! -f "$f" ]; then echo "SKIP: $f is not here"; exit 77; fi
done
if ! "$cpudiff" engines | grep -Eq "^$engine +[a-z]+ +yes"; then
  echo "SKIP: engine $engine is not available on this host"; exit 77
fi
db=$(mktemp -d)/run.db
"$cpudiff" run "$@" --engines "$engine" $mode --db "$db"
status=$?
if [ $status -ne 0 ]; then "$cpudiff" report --db "$db" | head -200; fi
rm -rf "$(dirname "$db")"
exit $status

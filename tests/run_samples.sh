#!/usr/bin/env bash
# run_samples.sh CPUDIFF SAMPLES: the shared silicon-checked samples on
# `native`. They were recorded on an Intel CPU; where the manual leaves a
# result undefined or the vendors differ (shld/shrd r16 with counts above 16,
# dpps rounding, the flags of a rep cmps interrupted by #PF, a call to a
# non-canonical target writing its return address first), AMD silicon
# answers differently: on an AMD host 993 of the 1,000 agree. So the check
# runs only on the vendor the samples came from.
set -u
vendor=$(awk -F': ' '/^vendor_id/ {print $2; exit}' /proc/cpuinfo)
if [ "$vendor" != "GenuineIntel" ]; then
  echo "SKIP: the samples were recorded on GenuineIntel silicon; this host is $vendor"
  exit 77
fi
exec "$(dirname "$0")/run_corpus.sh" "$1" native "" "$2"

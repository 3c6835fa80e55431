#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script (docs/fuzzing.md): builds the
# libFuzzer target with the compiler, sanitizer and coverage flags the
# service passes in CXX/CXXFLAGS and LIB_FUZZING_ENGINE, and puts it in $OUT.
# The C parts (the native engine's freestanding runner, the qemu jail) run
# without libc or sanitizers and are built by gcc without the service's
# CFLAGS.
cd "$SRC/cpudiff"
CFLAGS="" cmake -S . -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DCPUDIFF_LIBFUZZER=ON -DCPUDIFF_TESTS=OFF
cmake --build "$WORK/build" --target cpudiff_differential_fuzzer
cp "$WORK/build/cpudiff_differential_fuzzer" "$OUT/"
# Known divergences travel with the target (CPUDIFF_KNOWN is read at start;
# ClusterFuzzLite runs targets from $OUT).
cp -r corpus/known "$OUT/known"

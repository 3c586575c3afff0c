#!/bin/sh
# device-check.sh: build and run the CUDA checks on a GPU machine, logs in $OUT.
#
#   cuda/device-check.sh --prepare [DIR]
#       On the build machine (no GPU needed), after
#       `./configure --with-cuda && make`: copy the tool, the conformance
#       suite and the shared libraries they need that a bare GPU machine may
#       lack (libkvreviver, Check, GSL, subunit, cudart) into DIR (default
#       devbuild/), about 10 MiB, to carry to the GPU machine.
#   cuda/device-check.sh
#       On the GPU machine, from the repository root: nvidia-smi, then the
#       conformance suite (tests/cuda) and `kvreviver bench --backend cuda`,
#       each under a timeout.  Uses devbuild/ when present; otherwise builds
#       in the tree (needs autotools, Check and GSL there, and about two
#       minutes on 16 cores).  Logs: $OUT/nvidia-smi.txt, build.log,
#       cuda-test.log, bench-cuda.log, summary.txt.  Exit status: 0 when the
#       suite and the bench passed.
set -u
here=$(pwd)

if [ "${1:-}" = "--prepare" ]; then
    dir=${2:-devbuild}
    set -e
    test -x tool/.libs/kvreviver || { echo "build first: ./configure --with-cuda && make && make check TESTS=" >&2; exit 2; }
    test -f tests/cuda || make tests/cuda
    mkdir -p "$dir"
    cp -L tool/.libs/kvreviver "$dir/kvreviver"
    real=tests/.libs/cuda
    test -x "$real" || real=tests/.libs/lt-cuda
    cp -L "$real" "$dir/cuda-test"
    for bin in "$dir/kvreviver" "$dir/cuda-test"; do
        LD_LIBRARY_PATH=$here/.libs ldd "$bin" | awk '/=> \// {print $3}' |
            grep -E 'libkvreviver|libcheck|libgsl|libsubunit|libcudart|libstdc' |
            while read -r lib; do cp -L "$lib" "$dir/"; done
    done
    ls -l "$dir"
    echo "prepared $dir: carry it to the GPU machine and run sh cuda/device-check.sh there"
    exit 0
fi

set -x
OUT=${OUT:-$here/device-out}
mkdir -p "$OUT"
date -u >"$OUT/summary.txt"
timeout 30 nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
timeout 30 nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv >>"$OUT/nvidia-smi.txt" 2>&1

if [ -x devbuild/kvreviver ] && [ -x devbuild/cuda-test ]; then
    export LD_LIBRARY_PATH="$here/devbuild${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    kvr=$here/devbuild/kvreviver
    suite=$here/devbuild/cuda-test
    echo "using the prebuilt devbuild/" >>"$OUT/summary.txt"
else
    if ! pkg-config --exists check gsl; then
        echo "Check or GSL missing here and no devbuild/: run cuda/device-check.sh --prepare on the build machine and carry devbuild" |
            tee -a "$OUT/summary.txt"
        exit 3
    fi
    {
        test -x configure || ./bootstrap
        test -f Makefile || timeout 90 ./configure --with-cuda -q
        timeout 240 make -j16 && make tests/cuda
    } >"$OUT/build.log" 2>&1
    build=$?
    echo "build exit $build" >>"$OUT/summary.txt"
    [ $build -eq 0 ] || { tail -40 "$OUT/build.log"; exit 4; }
    kvr=$here/tool/kvreviver
    suite=$here/tests/cuda
fi

# line-buffered output, so a run cut by its timeout still leaves its lines
lb=""
command -v stdbuf >/dev/null 2>&1 && lb="stdbuf -oL -eL"
timeout 180 $lb "$suite" >"$OUT/cuda-test.log" 2>&1
test_rc=$?
echo "tests/cuda exit $test_rc" >>"$OUT/summary.txt"
tail -5 "$OUT/cuda-test.log"

timeout 300 $lb "$kvr" bench --backend cuda >"$OUT/bench-cuda.log" 2>&1
bench_rc=$?
echo "bench exit $bench_rc" >>"$OUT/summary.txt"
cat "$OUT/bench-cuda.log"
cat "$OUT/summary.txt"
[ $test_rc -eq 0 ] && [ $bench_rc -eq 0 ]

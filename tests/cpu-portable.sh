#!/bin/sh
# cpu-portable.sh: tests/cpu on the portable kernels (KVR_CPU_ISA=portable),
# the path of a processor without AVX2 (issue 25).
KVR_CPU_ISA=portable exec "$top_builddir/tests/cpu"

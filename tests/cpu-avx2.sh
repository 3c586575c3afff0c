#!/bin/sh
# cpu-avx2.sh: tests/cpu on the AVX2 kernels (KVR_CPU_ISA=avx2) where the
# processor would pick AVX-512 (issue 25); elsewhere the same as tests/cpu.
KVR_CPU_ISA=avx2 exec "$top_builddir/tests/cpu"

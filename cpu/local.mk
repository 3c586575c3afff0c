# cpu/local.mk: the CPU backend (doc/cuda.md, "The CPU path"): always built.
# The AVX2 kernels carry a function attribute and are chosen at run time
# (cpu/simd.h), so no configure check or extra flag is needed.
libkvreviver_la_SOURCES += lib/cpu_backend.c lib/cpu_backend.h \
	cpu/kvr_cpu.h cpu/cpu.h cpu/simd.h cpu/attend.c cpu/moment.c cpu/tier.c cpu/pool.c

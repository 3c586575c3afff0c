# cuda/local.mk: the CUDA backend, compiled with nvcc through libtool when
# configure found a working CUDA toolkit (see configure.ac).
# ref/sketchattend.c is the reference's form of the fast path's math: always built.
libkvreviver_la_SOURCES += ref/sketchattend.c
CUDA_SOURCES = cuda/device.cu cuda/sketch.cu cuda/reconstruct.cu cuda/attend.cu cuda/prefill.cu
KVR_CUDA_HDRS = cuda/kvr_cuda.h cuda/hash.cuh cuda/common.cuh cuda/reconstruct.cuh
EXTRA_DIST += lib/cuda_backend.c lib/cuda_backend.h $(CUDA_SOURCES) $(KVR_CUDA_HDRS) cuda/nvcc-wrap cuda/device-check.sh
if KVR_CUDA
# the host glue of the CUDA backend (doc/cuda.md)
libkvreviver_la_SOURCES += lib/cuda_backend.c lib/cuda_backend.h
# CUDA_LIBS: the static CUDA runtime (configure.ac)
libkvreviver_la_LIBADD += $(CUDA_SOURCES:.cu=.lo) $(CUDA_LIBS)
EXTRA_libkvreviver_la_DEPENDENCIES += $(CUDA_SOURCES:.cu=.lo)
$(CUDA_SOURCES:.cu=.lo): $(KVR_CUDA_HDRS) lib/kvreviver.h
NVCC_COMPILE = $(LIBTOOL) $(AM_V_lt) --tag=CC --mode=compile $(SHELL) $(top_srcdir)/cuda/nvcc-wrap \
	$(NVCC) $(CUDA_ARCH) $(NVCCFLAGS) -O3 -fmad=false --compiler-options=-Wall -I$(top_srcdir)/cuda -std=c++17 $(DEFS) -I$(top_builddir) $(AM_CPPFLAGS) $(CPPFLAGS)
SUFFIXES = .cu .lo
.cu.lo:
	$(AM_V_GEN)$(NVCC_COMPILE) -c -o $@ $<
CLEANFILES += $(CUDA_SOURCES:.cu=.lo) $(CUDA_SOURCES:.cu=.o)
clean-local: clean-cuda
clean-cuda:
	-rm -rf cuda/.libs
endif

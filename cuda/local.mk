# cuda/local.mk: the CUDA backend, compiled with nvcc through libtool when
# configure found a working CUDA toolkit (see configure.ac).
# ref/sketchattend.c is the reference's form of the fast path's math: always built.
libkvreviver_la_SOURCES += ref/sketchattend.c
CUDA_SOURCES = cuda/device.cu
EXTRA_DIST += $(CUDA_SOURCES) cuda/nvcc-wrap
if KVR_CUDA
libkvreviver_la_LIBADD += $(CUDA_SOURCES:.cu=.lo) $(CUDA_LIBS)
EXTRA_libkvreviver_la_DEPENDENCIES = $(CUDA_SOURCES:.cu=.lo)
NVCC_COMPILE = $(LIBTOOL) $(AM_V_lt) --tag=CC --mode=compile $(SHELL) $(top_srcdir)/cuda/nvcc-wrap \
	$(NVCC) $(CUDA_ARCH) $(NVCCFLAGS) -O3 -std=c++17 $(DEFS) -I$(top_builddir) $(AM_CPPFLAGS) $(CPPFLAGS)
SUFFIXES = .cu .lo
.cu.lo:
	$(AM_V_GEN)$(NVCC_COMPILE) -c -o $@ $<
CLEANFILES += $(CUDA_SOURCES:.cu=.lo) $(CUDA_SOURCES:.cu=.o)
clean-local: clean-cuda
clean-cuda:
	-rm -rf cuda/.libs
endif

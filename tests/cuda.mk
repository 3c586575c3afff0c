# tests/cuda.mk: the CUDA area's tests: the sketch-domain route of the
# reference (runs everywhere) and the CUDA conformance suite (SKIPs without
# a GPU).
check_PROGRAMS += tests/sketchattend tests/cuda
TESTS += tests/sketchattend tests/cuda
tests_sketchattend_SOURCES = tests/sketchattend.c tests/testutil.h tests/testutil.c
tests_sketchattend_CFLAGS = $(TEST_CFLAGS)
tests_sketchattend_LDADD = $(TEST_LDADD)
tests_cuda_SOURCES = tests/cuda.c tests/testutil.h tests/testutil.c
tests_cuda_CFLAGS = $(TEST_CFLAGS) $(CUDA_CFLAGS)
tests_cuda_LDADD = $(TEST_LDADD)
TESTS += tests/bench.sh
dist_check_SCRIPTS += tests/bench.sh
if KVR_CUDA
# the conformance suite against a host stand-in of the kernels (no GPU
# needed): checks the backend glue (tests/cuda_mock.c)
check_PROGRAMS += tests/cuda_mock
TESTS += tests/cuda_mock
tests_cuda_mock_SOURCES = tests/cuda.c tests/cuda_mock.c tests/testutil.h tests/testutil.c
tests_cuda_mock_CFLAGS = $(TEST_CFLAGS) -DKVR_CUDA_MOCK
tests_cuda_mock_LDADD = $(TEST_LDADD)
endif
EXTRA_DIST += tests/cuda_mock.c

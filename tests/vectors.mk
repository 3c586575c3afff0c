# tests/vectors.mk: the .npy reader/writer, the conformance vectors and the
# port validator (issue 5).
check_PROGRAMS += tests/npy
TESTS += tests/npy
tests_npy_SOURCES = tests/npy.c
tests_npy_CFLAGS = $(TEST_CFLAGS)
tests_npy_LDADD = $(TEST_LDADD)

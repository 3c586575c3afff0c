# tests/local.mk: Check suites, run through automake's parallel test harness.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(GSL_CFLAGS)
TEST_LDADD = libkvreviver.la $(CHECK_LIBS) $(GSL_LIBS) -lm

check_PROGRAMS = tests/hash tests/cuda
tests_hash_SOURCES = tests/hash.c
tests_hash_CFLAGS = $(TEST_CFLAGS)
tests_hash_LDADD = $(TEST_LDADD)
tests_cuda_SOURCES = tests/cuda.c
tests_cuda_CFLAGS = $(TEST_CFLAGS)
tests_cuda_LDADD = $(TEST_LDADD)

TESTS = $(check_PROGRAMS)

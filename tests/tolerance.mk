# tests/tolerance.mk: (filled in by its area; add with +=)
check_PROGRAMS += tests/tolerance
TESTS += tests/tolerance
tests_tolerance_SOURCES = tests/tolerance.c tests/testutil.h tests/testutil.c
tests_tolerance_CFLAGS = $(TEST_CFLAGS)
tests_tolerance_LDADD = $(TEST_LDADD)

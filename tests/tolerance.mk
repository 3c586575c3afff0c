# tests/tolerance.mk: (filled in by its area; add with +=)
check_PROGRAMS += tests/tolerance
TESTS += tests/tolerance
tests_tolerance_SOURCES = tests/tolerance.c
tests_tolerance_CFLAGS = $(TEST_CFLAGS)
tests_tolerance_LDADD = $(TEST_LDADD)
# the known-answer table of doc/hash.md (spec §5), kept with the spec's tests
check_PROGRAMS += tests/hash_spec
TESTS += tests/hash_spec
tests_hash_spec_SOURCES = tests/hash_spec.c
tests_hash_spec_CFLAGS = $(TEST_CFLAGS)
tests_hash_spec_LDADD = $(TEST_LDADD)

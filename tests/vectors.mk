# tests/vectors.mk: the .npy reader/writer, the conformance vectors and the
# port validator (issue 5).
check_PROGRAMS += tests/npy
TESTS += tests/npy
tests_npy_SOURCES = tests/npy.c
tests_npy_CFLAGS = $(TEST_CFLAGS)
tests_npy_LDADD = $(TEST_LDADD)

# The conformance vectors: a committed copy (regenerate on purpose with
# `tool/kvreviver vectors --out tests/vectors`), shipped whole in the tarball.
EXTRA_DIST += tests/vectors
check_PROGRAMS += tests/vectors-perturb tests/vectors-altport
tests_vectors_altport_SOURCES = tests/vectors-altport.c
tests_vectors_altport_CFLAGS = $(TEST_CFLAGS)
tests_vectors_altport_LDADD = $(TEST_LDADD)
tests_vectors_perturb_SOURCES = tests/vectors-perturb.c
tests_vectors_perturb_CFLAGS = $(TEST_CFLAGS)
tests_vectors_perturb_LDADD = $(TEST_LDADD)
TESTS += tests/vectors-drift.sh tests/vectors-perturb.sh tests/vectors-altport.sh tests/vectors-numpy.sh \
	tests/vectors-manifest.sh
dist_check_SCRIPTS += tests/vectors-drift.sh tests/vectors-perturb.sh tests/vectors-altport.sh \
	tests/vectors-numpy.sh tests/vectors-manifest.sh

# Mutation tests of the vectors (issue 16): every wrong reading of the spec in
# tests/vectors-mutants.tab must fail validation.  The script compiles its own
# mutant generators (tests/vectors-mutants-gen.c and the library sources) with
# $(CC); to add a mutant, add a line to the table.
TESTS += tests/vectors-mutants.sh
dist_check_SCRIPTS += tests/vectors-mutants.sh
EXTRA_DIST += tests/vectors-mutants.tab tests/vectors-mutants-gen.c

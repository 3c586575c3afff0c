# tests/ref.mk: Check suites of the scalar reference and the public API, one
# per concept, with the stem of ref/*.c and doc/*.md (spec §N in comments).
# tests/hash is registered in tests/local.mk; it shares tests/testutil.c.
REF_TESTS = tests/elem tests/head tests/sketch tests/reconstruct tests/bound \
	tests/attend tests/moment tests/prefill tests/budget tests/api tests/quant tests/tier
check_PROGRAMS += $(REF_TESTS)
TESTS += $(REF_TESTS)
TESTUTIL = tests/testutil.h tests/testutil.c
tests_hash_SOURCES += tests/testutil.h tests/testutil.c
tests_elem_SOURCES = tests/elem.c $(TESTUTIL)
tests_elem_CFLAGS = $(TEST_CFLAGS)
tests_elem_LDADD = $(TEST_LDADD)
tests_quant_SOURCES = tests/quant.c $(TESTUTIL)
tests_quant_CFLAGS = $(TEST_CFLAGS)
tests_quant_LDADD = $(TEST_LDADD)
tests_tier_SOURCES = tests/tier.c $(TESTUTIL)
tests_tier_CFLAGS = $(TEST_CFLAGS)
tests_tier_LDADD = $(TEST_LDADD)
tests_head_SOURCES = tests/head.c $(TESTUTIL)
tests_head_CFLAGS = $(TEST_CFLAGS)
tests_head_LDADD = $(TEST_LDADD)
tests_sketch_SOURCES = tests/sketch.c $(TESTUTIL)
tests_sketch_CFLAGS = $(TEST_CFLAGS)
tests_sketch_LDADD = $(TEST_LDADD)
tests_reconstruct_SOURCES = tests/reconstruct.c $(TESTUTIL)
tests_reconstruct_CFLAGS = $(TEST_CFLAGS)
tests_reconstruct_LDADD = $(TEST_LDADD)
tests_bound_SOURCES = tests/bound.c $(TESTUTIL)
tests_bound_CFLAGS = $(TEST_CFLAGS)
tests_bound_LDADD = $(TEST_LDADD)
tests_attend_SOURCES = tests/attend.c $(TESTUTIL)
tests_attend_CFLAGS = $(TEST_CFLAGS)
tests_attend_LDADD = $(TEST_LDADD)
tests_moment_SOURCES = tests/moment.c $(TESTUTIL)
tests_moment_CFLAGS = $(TEST_CFLAGS)
tests_moment_LDADD = $(TEST_LDADD)
tests_prefill_SOURCES = tests/prefill.c $(TESTUTIL)
tests_prefill_CFLAGS = $(TEST_CFLAGS)
tests_prefill_LDADD = $(TEST_LDADD)
tests_budget_SOURCES = tests/budget.c $(TESTUTIL)
tests_budget_CFLAGS = $(TEST_CFLAGS)
tests_budget_LDADD = $(TEST_LDADD)
tests_api_SOURCES = tests/api.c $(TESTUTIL)
tests_api_CFLAGS = $(TEST_CFLAGS)
tests_api_LDADD = $(TEST_LDADD)

# the CPU backend's conformance with the reference (issue 25), and the same
# on the AVX2 and the portable kernels
check_PROGRAMS += tests/cpu
TESTS += tests/cpu tests/cpu-avx2.sh tests/cpu-portable.sh
dist_check_SCRIPTS += tests/cpu-avx2.sh tests/cpu-portable.sh
tests_cpu_SOURCES = tests/cpu.c tests/testutil.h tests/testutil.c
tests_cpu_CFLAGS = $(TEST_CFLAGS)
tests_cpu_LDADD = $(TEST_LDADD)
# the conformance vectors run on the cpu backend, and eval --backend cpu
TESTS += tests/cpu-vectors.sh tests/cpu-eval.sh
dist_check_SCRIPTS += tests/cpu-vectors.sh tests/cpu-eval.sh

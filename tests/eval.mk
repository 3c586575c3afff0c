# tests/eval.mk: the evaluation (doc/eval.md): metrics on hand-computed
# cases and the done-when properties (tests/eval.c), traces
# (tests/eval-trace.c), and the CLI's contract (tests/cli-eval.sh).
check_PROGRAMS += tests/eval
TESTS += tests/eval
tests_eval_SOURCES = tests/eval.c
tests_eval_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tool
tests_eval_CFLAGS = $(TEST_CFLAGS)
tests_eval_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_COMMON_LIB) $(TEST_LDADD)
check_PROGRAMS += tests/eval-trace
TESTS += tests/eval-trace
tests_eval_trace_SOURCES = tests/eval-trace.c
tests_eval_trace_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tool
tests_eval_trace_CFLAGS = $(TEST_CFLAGS)
tests_eval_trace_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_COMMON_LIB) $(TEST_LDADD)
TESTS += tests/cli-eval.sh
dist_check_SCRIPTS += tests/cli-eval.sh
TESTS += tests/layers.sh
dist_check_SCRIPTS += tests/layers.sh
# doc/results.md's cheap tables, rerun and compared with the doc (issue 23)
TESTS += tests/results-repro.sh
dist_check_SCRIPTS += tests/results-repro.sh
EXTRA_DIST += tests/results-repro.py
check-results-smollm2: all
	@test -n "$(KVR_SMOLLM2)" || { echo "check-results-smollm2: set KVR_SMOLLM2=MODEL.gguf (scripts/fetch-smollm2.sh)" >&2; exit 1; }
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' KVR_SMOLLM2='$(KVR_SMOLLM2)' \
	  $(SHELL) $(abs_top_srcdir)/tests/results-repro.sh
check-results-gemma3: all
	@test -n "$(KVR_GEMMA3)" || { echo "check-results-gemma3: set KVR_GEMMA3=MODEL.gguf (scripts/fetch-gemma3.sh)" >&2; exit 1; }
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' KVR_GEMMA3='$(KVR_GEMMA3)' \
	  $(SHELL) $(abs_top_srcdir)/tests/results-repro.sh
.PHONY: check-results-smollm2 check-results-gemma3

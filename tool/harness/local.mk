# tool/harness/local.mk: the evaluation harness (doc/eval.md, doc/model.md
# §4): workloads, metrics, reports and plots, the soak run, the real-model
# tasks.
TOOL_HARNESS_LIB = tool/harness/libharness.a
noinst_LIBRARIES += tool/harness/libharness.a
tool_harness_libharness_a_SOURCES = tool/harness/workload.h tool/harness/workload.c \
	tool/harness/eval.h tool/harness/eval.c tool/harness/report.h tool/harness/report.c \
	tool/harness/soak.h tool/harness/soak.c tool/harness/bench.h tool/harness/bench.c tool/harness/bench_cpu.c tool/harness/model_eval.h \
	tool/harness/model_run.c tool/harness/model_eval.c tool/harness/passkey.c \
	tool/harness/interval.h tool/harness/interval.c tool/harness/keystats.h tool/harness/keystats.c
tool_harness_libharness_a_CPPFLAGS = $(TOOL_CPPFLAGS)
tool_harness_libharness_a_CFLAGS = $(AM_CFLAGS) $(GSL_CFLAGS)

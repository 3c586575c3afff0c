# tests/model.mk: the real-model forward pass and its evaluation (doc/model.md)
check_PROGRAMS += tests/model
TESTS += tests/model
tests_model_SOURCES = tests/model.c
tests_model_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tool
tests_model_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_RUNTIME_LIB) $(TOOL_COMMON_LIB) $(TEST_LDADD)
tests_model_SOURCES += tests/testutil.h tests/testutil.c

# tests/model.mk: the real-model forward pass and its evaluation (doc/model.md)
check_PROGRAMS += tests/model
TESTS += tests/model
tests_model_SOURCES = tests/model.c tool/model.h tool/model.c tool/llama2c.c tool/gguf.c \
	tool/model_run.c tool/bpe.c
tests_model_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tool
tests_model_LDADD = $(TEST_LDADD)
tests_model_SOURCES += tests/testutil.h tests/testutil.c

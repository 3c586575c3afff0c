# tests/model.mk: the real-model forward pass and its evaluation (doc/model.md)
check_PROGRAMS += tests/model
TESTS += tests/model
tests_model_SOURCES = tests/model.c
tests_model_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tool
tests_model_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_RUNTIME_LIB) $(TOOL_COMMON_LIB) $(TEST_LDADD)
tests_model_SOURCES += tests/testutil.h tests/testutil.c
# the statistics of `kvreviver keys` (tool/harness/keystats.c)
check_PROGRAMS += tests/keystats
TESTS += tests/keystats
tests_keystats_SOURCES = tests/keystats.c tests/testutil.h tests/testutil.c
tests_keystats_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tool
tests_keystats_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_RUNTIME_LIB) $(TOOL_COMMON_LIB) $(TEST_LDADD)
TESTS += tests/cli-keys.sh
dist_check_SCRIPTS += tests/cli-keys.sh
# the runtime beside llama.cpp (doc/model.md §8): tokens and logits of the
# same text; skips where llama-cpp-python, NumPy or a GGUF model is absent
check_PROGRAMS += tests/lm-dump
tests_lm_dump_SOURCES = tests/lm-dump.c
tests_lm_dump_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tool
tests_lm_dump_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_RUNTIME_LIB) $(TOOL_COMMON_LIB) $(TEST_LDADD)
TESTS += tests/llamacpp.sh
dist_check_SCRIPTS += tests/llamacpp.sh
EXTRA_DIST += tests/llamacpp-check.py tests/llamacpp-sample.txt
# the passkey prompt's ids fed to llama.cpp (doc/model.md §9); run by hand
EXTRA_DIST += tests/llamacpp-passkey.py
# Gemma 3 270M (doc/model.md §9): loads, tokenizes and decodes; skips without the file
TESTS += tests/gemma.sh
dist_check_SCRIPTS += tests/gemma.sh
EXTRA_DIST += scripts/install-llamacpp.sh scripts/fetch-smollm2.sh scripts/fetch-gemma3.sh

# tool/local.mk: the kvreviver command-line tool (the front end, in tool/
# itself) and its man page.  The rooms below it are built as static
# libraries that the tool links, lowest last (tool/README):
#   tool/harness      the evaluation harness   (uses runtime, common)
#   tool/runtime      the llama-architecture runtime (uses the library)
#   tool/conformance  the conformance kit      (uses the library)
#   tool/common       the tool's message lines (uses the C library only)
TOOL_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tool
noinst_LIBRARIES =
include tool/common/local.mk
include tool/runtime/local.mk
include tool/conformance/local.mk
include tool/harness/local.mk

bin_PROGRAMS = tool/kvreviver
tool_kvreviver_SOURCES = tool/kvreviver.c tool/cli.h tool/demo.c tool/cmd_eval.c \
	tool/cmd_vectors.c tool/cmd_bench.c
tool_kvreviver_CPPFLAGS = $(TOOL_CPPFLAGS)
tool_kvreviver_CFLAGS = $(AM_CFLAGS) $(GSL_CFLAGS)
tool_kvreviver_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_RUNTIME_LIB) $(TOOL_CONFORMANCE_LIB) \
	$(TOOL_COMMON_LIB) libkvreviver.la $(GSL_LIBS) -lm
# tool/cmd_bench.c includes cuda/kvr_cuda.h when CUDA is built.
dist_man_MANS = tool/kvreviver.1
EXTRA_DIST += tool/README tool/common/README tool/runtime/README \
	tool/conformance/README tool/harness/README

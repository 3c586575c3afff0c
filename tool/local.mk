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
	tool/cmd_vectors.c tool/cmd_bench.c tool/cmd_keys.c
tool_kvreviver_CPPFLAGS = $(TOOL_CPPFLAGS)
tool_kvreviver_CFLAGS = $(AM_CFLAGS) $(GSL_CFLAGS)
tool_kvreviver_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_RUNTIME_LIB) $(TOOL_CONFORMANCE_LIB) \
	$(TOOL_COMMON_LIB) libkvreviver.la $(GSL_LIBS) -lm
# tool/cmd_bench.c includes cuda/kvr_cuda.h when CUDA is built.
# The man page is made from the tool's --help by help2man (tool/man.sh) when
# configure found it, else the committed copy is used.  It depends on the
# sources that print the help, not on the binary (which it only needs
# built first), so a tarball's page is not remade.  In a build outside the source tree the remade page lands in
# the build tree, and distclean removes it there.
dist_man_MANS = tool/kvreviver.1
TOOL_MAN_DEPS = $(srcdir)/tool/kvreviver.c $(srcdir)/tool/demo.c $(srcdir)/tool/cmd_eval.c \
	$(srcdir)/tool/cmd_vectors.c $(srcdir)/tool/cmd_bench.c $(srcdir)/tool/cmd_keys.c \
	$(srcdir)/tool/kvreviver.h2m $(srcdir)/tool/man.sh $(top_srcdir)/configure.ac
if KVR_HELP2MAN
tool/kvreviver.1: $(TOOL_MAN_DEPS) | tool/kvreviver$(EXEEXT)
	$(AM_V_GEN)$(SHELL) $(srcdir)/tool/man.sh '$(HELP2MAN)' tool/kvreviver$(EXEEXT) $(srcdir)/tool/kvreviver.h2m $@
endif
distclean-local: distclean-local-man
distclean-local-man:
	if test "$(srcdir)" != "."; then rm -f tool/kvreviver.1; fi
.PHONY: distclean-local-man
EXTRA_DIST += tool/kvreviver.h2m tool/man.sh tool/README tool/common/README tool/runtime/README \
	tool/conformance/README tool/harness/README

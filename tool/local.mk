# tool/local.mk: the kvreviver command-line tool and its man page.
bin_PROGRAMS = tool/kvreviver
tool_kvreviver_SOURCES = tool/kvreviver.c tool/cli.h tool/workload.c tool/workload.h \
	tool/eval.c tool/eval.h tool/demo.c tool/cmd_eval.c tool/cmd_vectors.c tool/cmd_bench.c
tool_kvreviver_CFLAGS = $(AM_CFLAGS) $(GSL_CFLAGS)
tool_kvreviver_LDADD = libkvreviver.la $(GSL_LIBS) -lm
dist_man_MANS = tool/kvreviver.1
include tool/eval.mk
include tool/vectors.mk
include tool/bench.mk
include tool/model.mk

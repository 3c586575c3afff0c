# tests/robust.mk: cache files, fault injection, soak, bad CLI input (issue 8).
check_PROGRAMS += tests/file tests/faults tests/soak
TESTS += tests/file tests/faults tests/soak
tests_soak_SOURCES = tests/soak.c
tests_soak_CPPFLAGS = $(TOOL_CPPFLAGS)
tests_soak_CFLAGS = $(TEST_CFLAGS)
tests_soak_LDADD = $(TOOL_HARNESS_LIB) $(TOOL_COMMON_LIB) $(TEST_LDADD)
tests_file_SOURCES = tests/file.c tests/robust-util.h
tests_file_CFLAGS = $(TEST_CFLAGS)
tests_file_LDADD = $(TEST_LDADD)
tests_faults_SOURCES = tests/faults.c tests/robust-util.h
tests_faults_CFLAGS = $(TEST_CFLAGS)
tests_faults_LDADD = $(TEST_LDADD)

# ---- fuzz targets (fuzz/, doc/files.md) --------------------------------
# Each target's LLVMFuzzerTestOneInput is also linked with fuzz/replay.c
# into a plain program that replays the seed corpus and every crash input
# found (fuzz/regress/<target>/) in make check.
FUZZ_NAMES = cache_load npy_read model_load
FUZZ_SECONDS = 60
check_PROGRAMS += fuzz/replay-cache_load fuzz/replay-npy_read fuzz/replay-model_load
fuzz_replay_cache_load_SOURCES = fuzz/cache_load.c fuzz/replay.c fuzz/fuzz.h
fuzz_replay_cache_load_CFLAGS = $(AM_CFLAGS)
fuzz_replay_cache_load_LDADD = libkvreviver.la -lm
fuzz_replay_npy_read_SOURCES = fuzz/npy_read.c fuzz/replay.c fuzz/fuzz.h
fuzz_replay_npy_read_CFLAGS = $(AM_CFLAGS)
fuzz_replay_npy_read_LDADD = libkvreviver.la -lm
fuzz_replay_model_load_SOURCES = fuzz/replay.c fuzz/model_load.c fuzz/fuzz.h
fuzz_replay_model_load_CPPFLAGS = $(TOOL_CPPFLAGS)
fuzz_replay_model_load_CFLAGS = $(AM_CFLAGS)
fuzz_replay_model_load_LDADD = $(TOOL_RUNTIME_LIB) libkvreviver.la $(GSL_LIBS) -lm
TESTS += tests/fuzz-replay.sh
dist_check_SCRIPTS += tests/fuzz-replay.sh
EXTRA_DIST += fuzz/corpus fuzz/regress fuzz/make-corpus.c

if KVR_FUZZ
check_PROGRAMS += fuzz/cache_load fuzz/npy_read fuzz/model_load
fuzz_cache_load_SOURCES = fuzz/cache_load.c fuzz/fuzz.h
fuzz_cache_load_CFLAGS = $(AM_CFLAGS)
fuzz_cache_load_LDADD = libkvreviver.la -lm
fuzz_cache_load_LDFLAGS = -fsanitize=fuzzer
fuzz_npy_read_SOURCES = fuzz/npy_read.c fuzz/fuzz.h
fuzz_npy_read_CFLAGS = $(AM_CFLAGS)
fuzz_npy_read_LDADD = libkvreviver.la -lm
fuzz_npy_read_LDFLAGS = -fsanitize=fuzzer
fuzz_model_load_SOURCES = fuzz/model_load.c fuzz/fuzz.h
fuzz_model_load_CPPFLAGS = $(TOOL_CPPFLAGS)
fuzz_model_load_CFLAGS = $(AM_CFLAGS)
fuzz_model_load_LDADD = $(TOOL_RUNTIME_LIB) libkvreviver.la $(GSL_LIBS) -lm
fuzz_model_load_LDFLAGS = -fsanitize=fuzzer

# make fuzz [FUZZ_SECONDS=60]: run each target for FUZZ_SECONDS on a scratch
# corpus seeded from fuzz/corpus/<target>; a crash stops with its input in
# fuzz-work/ (copy it to fuzz/regress/<target>/ and fix the bug).
fuzz: fuzz/cache_load fuzz/npy_read fuzz/model_load
	@for n in $(FUZZ_NAMES); do \
	  mkdir -p fuzz-work/$$n || exit 1; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  ./fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=fuzz-work/$$n- fuzz-work/$$n $(srcdir)/fuzz/corpus/$$n \
	    2>fuzz-work/$$n.log; rc=$$?; \
	  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' fuzz-work/$$n.log; \
	  if [ $$rc -ne 0 ]; then tail -n 40 fuzz-work/$$n.log; \
	    echo "fuzz: $$n FAILED (exit $$rc); the input is fuzz-work/$$n-*: add it to fuzz/regress/$$n/"; exit 1; fi; \
	done; echo "fuzz: all targets ran $(FUZZ_SECONDS) s without a failure"
else
fuzz:
	@echo "make fuzz: the fuzz targets need ./configure --enable-fuzz CC=clang" >&2; exit 1
endif
.PHONY: fuzz

# bad command lines (issue 8)
TESTS += tests/cli-bad.sh tests/cli-output.sh
dist_check_SCRIPTS += tests/cli-bad.sh tests/cli-output.sh

# ---- make check-valgrind ----------------------------------------------
# Every test program in TESTS (not the scripts) under valgrind memcheck
# through libtool (so the uninstalled shared library is found), with Check
# not forking so one process holds the whole run; then the fuzz replays.
# Every leak kind counts, still-reachable too: a test that frees all it
# made leaves nothing of the library allocated.
# VALGRIND_TESTS=... picks a subset.  Logs: tests/<name>.vg.log.
VALGRIND_TESTS = $(TESTS)
VALGRIND_FLAGS = --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=1 -q
check-valgrind: $(check_PROGRAMS)
	@if test -z "$(VALGRIND)"; then echo "check-valgrind: valgrind was not found by configure" >&2; exit 1; fi; \
	fail=0; \
	for t in $(VALGRIND_TESTS); do \
	  case $$t in *.sh) continue ;; esac; \
	  start=$$(date +%s); \
	  top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' PYTHON3='$(PYTHON3)' CK_FORK=no \
	    $(LIBTOOL) --mode=execute $(VALGRIND) $(VALGRIND_FLAGS) ./$$t >$$t.vg.log 2>&1; rc=$$?; \
	  if [ $$rc -eq 0 ] || [ $$rc -eq 77 ]; then echo "valgrind: $$t: ok (exit $$rc, $$(( $$(date +%s) - start )) s)"; \
	  else echo "valgrind: $$t: FAILED (exit $$rc)"; tail -n 60 $$t.vg.log; fail=1; fi; \
	done; \
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	  KVR_REPLAY_WRAPPER='$(LIBTOOL) --mode=execute $(VALGRIND) $(VALGRIND_FLAGS)' \
	  $(SHELL) $(srcdir)/tests/fuzz-replay.sh >tests/fuzz-replay.vg.log 2>&1 \
	  && echo "valgrind: fuzz replays: ok" || { echo "valgrind: fuzz replays: FAILED"; cat tests/fuzz-replay.vg.log; fail=1; }; \
	exit $$fail
.PHONY: check-valgrind
CLEANFILES += tests/*.vg.log

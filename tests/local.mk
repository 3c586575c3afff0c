# tests/local.mk: Check suites and test scripts, run through automake's
# parallel test harness.  Each area keeps its tests in its own fragment.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(GSL_CFLAGS)
TEST_LDADD = libkvreviver.la $(CHECK_LIBS) $(GSL_LIBS) -lm
AM_TESTS_ENVIRONMENT = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' PYTHON3='$(PYTHON3)' CC='$(CC)'; export top_srcdir top_builddir PYTHON3 CC;

check_PROGRAMS = tests/hash
tests_hash_SOURCES = tests/hash.c
tests_hash_CFLAGS = $(TEST_CFLAGS)
tests_hash_LDADD = $(TEST_LDADD)
TESTS = tests/hash
dist_check_SCRIPTS =

include tests/ref.mk
include tests/tolerance.mk
include tests/eval.mk
include tests/vectors.mk
include tests/robust.mk
include tests/model.mk
include tests/cuda.mk

# installing and linking: make install into a temporary prefix, the
# installed .pc, shared and static links through pkg-config, the installed
# tool without LD_LIBRARY_PATH (issue 15)
TESTS += tests/install.sh
dist_check_SCRIPTS += tests/install.sh
EXTRA_DIST += tests/install-app.c
AM_TESTS_ENVIRONMENT += KVR_MAKE='$(MAKE)' KVR_CC='$(CC)' KVR_PKG_CONFIG='$(PKG_CONFIG)'; export KVR_MAKE KVR_CC KVR_PKG_CONFIG;

# every test runs through tests/skip-why.sh, which shows beside a SKIP (or a
# skipped part) its reason; the model tests skip without a model: point
# them at one with KVR_TEST_MODEL=PATH (README.md, "Run the tests")
LOG_DRIVER = $(SHELL) $(top_srcdir)/tests/skip-why.sh $(SHELL) $(top_srcdir)/build-aux/test-driver
EXTRA_DIST += tests/skip-why.sh
TESTS += tests/skip-why-check.sh
dist_check_SCRIPTS += tests/skip-why-check.sh

# doc/README.md lists every page of doc/, and doc/local.mk installs it
TESTS += tests/doc-index.sh
dist_check_SCRIPTS += tests/doc-index.sh

# The library's layers call one way: base/ <- ref/ <- lib/ (base/README).
TESTS += tests/floors.sh
dist_check_SCRIPTS += tests/floors.sh
EXTRA_DIST += base/README

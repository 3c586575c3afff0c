# tests/robust.mk: cache files, fault injection, soak, bad CLI input (issue 8).
check_PROGRAMS += tests/file tests/faults
TESTS += tests/file tests/faults
tests_file_SOURCES = tests/file.c tests/robust-util.h
tests_file_CFLAGS = $(TEST_CFLAGS)
tests_file_LDADD = $(TEST_LDADD)
tests_faults_SOURCES = tests/faults.c tests/robust-util.h
tests_faults_CFLAGS = $(TEST_CFLAGS)
tests_faults_LDADD = $(TEST_LDADD)

# lib/local.mk: library sources added by later work (libkvreviver_la_SOURCES += ...)
libkvreviver_la_SOURCES += lib/tolerance.h lib/tolerance.c
libkvreviver_la_SOURCES += lib/file.c

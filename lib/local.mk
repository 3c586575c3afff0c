# lib/local.mk: library sources added by later work (one line per module).

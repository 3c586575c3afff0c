# tool/model.mk: the real-model forward pass (add sources with +=)
tool_kvreviver_SOURCES += tool/model.h tool/model.c tool/llama2c.c tool/gguf.c \
	tool/model_run.c tool/model_eval.c tool/bpe.c tool/passkey.c

# tool/model.mk: the real-model forward pass (add sources with +=)

# python/local.mk: the Python binding (doc/python.md, installed with doc/) travels in the
# tarball, and make check runs its pytest suite (python/check.sh; SKIP
# without python3, NumPy and pytest).
EXTRA_DIST += python/pyproject.toml \
	python/kvreviver/__init__.py python/kvreviver/_lib.py \
	python/examples/toy_attention.py python/examples/eval_cell.py \
	python/tests/conftest.py python/tests/vectors_port.py python/tests/test_abi.py \
	python/tests/test_api.py python/tests/test_errors.py python/tests/test_file.py \
	python/tests/test_vectors.py python/tests/test_eval.py python/tests/test_examples.py
TESTS += python/check.sh
dist_check_SCRIPTS += python/check.sh

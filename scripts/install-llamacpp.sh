#!/bin/sh
# scripts/install-llamacpp.sh: install what tests/llamacpp.sh checks the
# runtime against, from PyPI: llama-cpp-python (built from its source
# distribution, a few minutes on 2 cores), NumPy and gguf.  Nothing is
# vendored: the packages go to the user's Python, never into the tree.
#
# The build targets AVX2 without the host's newest units: llama.cpp's AMX
# path (Intel Sapphire Rapids and later) crashed in llama_decode on a
# machine whose kernel does not grant the AMX tile state (0.3.36,
# 2026-12-06), and the check needs the same arithmetic on every machine.
# Set CMAKE_ARGS yourself to build otherwise.
set -e
py=${PYTHON3:-python3}
: "${CMAKE_ARGS:=-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_OPENMP=OFF}"
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
"$py" -m pip install numpy gguf
"$py" -m pip install --no-binary llama-cpp-python llama-cpp-python==0.3.36
"$py" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__, "installed")'

#!/usr/bin/env bash
# Fetches into .whl/ the CPython 3.12 x86-64 wheels benchmarks/gpu.py needs on a lent GPU machine
# (the `device` tool) beyond what its image holds (PyTorch, torchvision, transformers,
# huggingface-hub, pyarrow, pandas, numpy, pillow, xxhash, ... are there): datasets with dill and
# multiprocess, Hydra/OmegaConf with antlr4 (an sdist: built into a wheel here), rapidfuzz,
# imagecodecs, and evalkit's own wheel, built from this checkout (rerun after changes; evalkit's
# configs ship inside the package, so it must be installed, not run from the tree). Versions are
# those of the environment given as $PYTHON (default .venv/bin/python: the one the tests ran in).
# About 31 MB, ignored through .git/info/exclude; with the tree, under the 64 MiB a call carries.
# Checked: gpu.py --smoke under the image's transformers 5.17 / huggingface-hub 1.33, evalkit
# installed from its wheel with --target. Prints the device command at the end.
#
#   bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p .whl .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
pins() {  # name==version of each distribution as installed in $PYTHON's environment
  "$PYTHON" -c 'import importlib.metadata as m, sys; print(*(f"{d}=={m.version(d)}" for d in sys.argv[1:]))' "$@"
}
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
# shellcheck disable=SC2046 - one word per pin
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl $(pins datasets dill multiprocess hydra-core omegaconf rapidfuzz imagecodecs)
"$PYTHON" -m pip wheel -q --no-deps -w .whl "$(pins antlr4-python3-runtime)"
rm -f .whl/evalkit_vlm-*.whl
"$PYTHON" -m pip wheel -q --no-deps -w .whl .
du -sh .whl
cat <<'CMD'
device tool: run with carry [".whl"] and the command
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 && python3 benchmarks/gpu.py 2>&1 | tee $OUT/gpu.txt
CMD

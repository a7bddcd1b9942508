#!/usr/bin/env bash
# The wheels benchmarks/gpu.py needs on a lent GPU machine (the `device` tool) beyond what its image
# holds (PyTorch, torchvision, transformers, huggingface-hub, tokenizers, pyarrow, pandas, numpy,
# pillow, xxhash, fsspec, filelock, tqdm, pyyaml are there): datasets and its dill/multiprocess,
# Hydra/OmegaConf (+ antlr4, sdist only: built into a wheel here), rapidfuzz and imagecodecs, for
# CPython 3.12 on x86-64, and evalkit's own wheel (built from this checkout: rerun after changes). They land in .whl/ (ignored through .git/info/exclude), about 31 MB: with
# the working tree well under the 64 MiB a device call carries. The image's transformers is used
# (checked with evalkit's tests' code path: benchmarks/gpu.py --smoke under transformers 5.17).
#
#   bash benchmarks/gpu_wheels.sh
#   then, with the device tool: carry [".whl"], command:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
#     && export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 && python3 benchmarks/gpu.py 2>&1 | tee $OUT/gpu.txt
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl \
  datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 hydra-core==1.3.8 omegaconf==2.3.1 \
  rapidfuzz==3.14.6 imagecodecs==2026.3.6
python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
rm -f .whl/evalkit_vlm-*.whl
python3 -m pip wheel -q --no-deps -w .whl .  # evalkit itself (its configs ship inside the package)
ls -l .whl
du -sh .whl

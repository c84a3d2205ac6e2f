#!/usr/bin/env bash
# Creates .venv-bench (gitignored) with CPU-usable PyTorch, numpy and g2p_en for the reference
# benchmarks.  Idempotent: re-running only installs what is missing.  Never run by CI.
#
# Only PyPI is reachable (no download.pytorch.org CPU wheels), and PyPI's Linux x86_64 torch
# wheel is a CUDA build: `import torch` fails without the CUDA runtime libraries
# (libtorch_global_deps.so / libtorch_cuda.so are DT_NEEDED-linked against libcudart, cublas,
# cudnn, cufft, cusparse(Lt), cusolver, nccl, nvshmem, nvrtc, cupti, cufile).  So:
#   1. pip install --no-deps torch==$TORCH_VERSION                      (~540 MB wheel)
#   2. its pure-python deps (filelock, typing-extensions, sympy, networkx, jinja2, fsspec, setuptools)
#   3. the nvidia-* / cuda-toolkit library wheels pinned in torch's own metadata, EXCEPT
#      triton and cuda-bindings (not needed to import torch or run on CPU).
# Result: ~4.4 GB venv (vs. more with triton), torch.cuda.is_available() == False, CPU kernels
# (MKL + oneDNN + OpenMP) as in any torch build.
#
# Usage: bash bench/setup_venv.sh            (TORCH_VERSION=2.15.0 by default; VENV=.venv-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-bench}
TORCH_VERSION=${TORCH_VERSION:-2.15.0}
PY=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade pip

have_torch() {
  "$VPY" -c "import torch,sys; sys.exit(0 if torch.__version__.split('+')[0]=='$TORCH_VERSION' else 1)" 2>/dev/null
}

if ! have_torch; then
  "$VPY" -m pip install -q --no-deps "torch==$TORCH_VERSION"
  # Every non-extra requirement of torch for this platform, minus triton and cuda-bindings.
  mapfile -t DEPS < <("$VPY" - <<'PYEOF'
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement
for r in requires("torch") or []:
    req = Requirement(r)
    if req.name.lower() in ("triton", "cuda-bindings"):
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    print(str(req).split(";")[0].strip())
PYEOF
)
  echo "installing torch's runtime deps: ${DEPS[*]}"
  "$VPY" -m pip install -q "${DEPS[@]}"
fi

"$VPY" -m pip install -q numpy safetensors "g2p_en==2.1.0"

# g2p_en's import calls nltk.download() (no network here); bench/g2p_en_numpy.py stubs it out.
"$VPY" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'threads', torch.get_num_threads()); print('numpy', numpy.__version__)"

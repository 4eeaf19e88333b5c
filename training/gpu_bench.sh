#!/usr/bin/env bash
# GPU training throughput, run on a lent GPU machine (see BENCHMARKS.md).
# Finds a python with CUDA torch (Debian's python3-torch is CPU-only), prints
# what it found, then times each backbone with synthetic 112x112 batches.
set -u
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
py=""
for c in /usr/bin/python3 python3 python; do
  if command -v "$c" >/dev/null && "$c" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    py=$c; break
  fi
done
if [ -z "$py" ]; then
  echo "NO_CUDA_TORCH: no python with CUDA-enabled torch on this machine"
  for c in /usr/bin/python3 python3; do command -v $c && $c -c "import torch; print(torch.__version__, torch.cuda.is_available())" 2>&1 | tail -1; done
  pip download --help >/dev/null 2>&1 && echo "(pip present, but the machine has no network)"
  exit 3
fi
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
for bb in iresnet18 iresnet50 iresnet100 mobilefacenet; do
  "$py" -m training.bench_throughput --device cuda --backbone $bb --batch-size 128 --steps 20 --warmup 3
  "$py" -m training.bench_throughput --device cuda --backbone $bb --batch-size 128 --steps 20 --warmup 3 --amp
done

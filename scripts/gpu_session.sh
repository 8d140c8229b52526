#!/usr/bin/env bash
# What a session with a CUDA machine runs, in stages (docs/gpu.md records the results):
#
#   bash scripts/gpu_session.sh DATA OUT check   # CUDA tests (tests/test_cuda.py, gemm, engine)
#   bash scripts/gpu_session.sh DATA OUT bench   # benchmarks/engine.py + models_vs_torchvision
#   bash scripts/gpu_session.sh DATA OUT probe   # resnet20 training throughput, 3 settings
#   bash scripts/gpu_session.sh DATA OUT batch   # resnet20 for the shipped weights (resumes)
#   What is left of issue #16, one device call each (each stage stops itself in time):
#   bash scripts/gpu_session.sh DATA OUT tests16   # tests/test_cuda.py + tests/fullsize on CUDA
#   bash scripts/gpu_session.sh DATA OUT stream16  # streamed resnet50 224 px vs the reference
#   bash scripts/gpu_session.sh DATA OUT full16    # the experiments' full profiles, in parallel
#
# DATA holds mnist/ and cifar10-jpg.tar.gz (a copy of ../shared/data); OUT receives the logs.
# Uses the machine's own python3 with torch (no venv) and the source tree on PYTHONPATH.
set -uo pipefail
DATA=$(realpath "$1"); OUT=$2; shift 2
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 CONVZOO_CACHE=${CONVZOO_CACHE:-/tmp/convzoo-cache}
mkdir -p ../shared "$OUT" "$CONVZOO_CACHE"
[ -e ../shared/data ] || ln -s "$DATA" ../shared/data
CIFAR=$CONVZOO_CACHE/cifar10-jpg
if [ ! -d "$CIFAR/test" ]; then mkdir -p "$CIFAR" && tar xzf "$DATA/cifar10-jpg.tar.gz" -C "$CIFAR"; fi
cz() { python3 -m convzoo "$@"; }

for stage in "$@"; do
  case $stage in
  check)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
    python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_gemm.py \
      tests/engine/test_features.py 2>&1 | tee "$OUT/cuda_tests.log" | tail -25 ;;
  bench)
    python3 benchmarks/engine.py --device cuda --repeats 3 --resnet-steps 200 2>&1 | tee "$OUT/bench_engine.log"
    python3 benchmarks/models_vs_torchvision.py --device cuda --batch-size 32 --repeats 10 --warmup 3 \
      --control --models alexnet,vgg16,googlenet,inception_v3,resnet50,densenet121 2>&1 | tee "$OUT/bench_models.log" ;;
  probe)
    i=0
    for flags in "" "--amp bf16 --channels-last" "--amp bf16 --channels-last --compile"; do
      i=$((i + 1)); run=/tmp/probe$i; rm -rf $run
      cz train resnet20 --recipe resnet-cifar --data folder --data-dir "$CIFAR" --val-split test \
        --device ${PROBE_DEVICE:-cuda} --max-steps ${PROBE_STEPS:-1200} $flags --out $run 2>&1 | tail -1
      python3 -c 'import json, sys; rows = [json.loads(l) for l in open(sys.argv[1])]
print("flags:", sys.argv[2] or "none", "| images/s per epoch:", [round(r["images_per_s"]) for r in rows])' \
        $run/metrics.jsonl "$flags"
    done 2>&1 | tee "$OUT/probe.log" ;;
  batch)
    # resnet20 for the shipped cifar10 weights (docs/model_cards.md), stopped by SIGTERM before
    # the device's 10-minute limit: a stopped run leaves a checkpoint, and the same stage resumes
    # it (DATA/carry-runs holds the run folder carried back from the last machine).
    T=${BATCH_SECONDS:-540}; R=/tmp/runs; mkdir -p $R
    [ -d "$DATA/carry-runs" ] && cp -r "$DATA/carry-runs/." /tmp/
    R20=$R/resnet20-c10
    if [ -f $R20/checkpoints/.resume-me ] || ls $R20/checkpoints/*.pt >/dev/null 2>&1; then
      r20=(--resume $R20); else r20=(resnet20 --data folder --data-dir "$CIFAR" --val-split test \
      --epochs 50 --batch-size 128 --lr 0.1 --nesterov --wd 5e-4 --lr-scheduler cosine \
      --device cuda --out $R20); fi
    timeout -s TERM $T python3 -m convzoo train "${r20[@]}" > "$OUT/resnet20.log" 2>&1
    tar czf "$OUT/resnet20.tgz" -C / tmp/runs
    tail -n 3 "$OUT/resnet20.log" ;;
  tests16)
    # Every test of tests/test_cuda.py (float64 forwards included) and the full-size CLI tests
    # with each command on the GPU (tests/fullsize/fullhelp.DEVICE).
    CONVZOO_TEST_DEVICE=cuda timeout -s INT ${T16:-300} python3 -m pytest -q -p no:cacheprovider \
      tests/test_cuda.py tests/fullsize 2>&1 | tee "$OUT/cuda_fullsize_tests.log" | tail -30 ;;
  stream16)
    # 4,800 JPEGs of 300-500 px = 75 steps of 64: convzoo's bar (read every 25 steps on a GPU)
    # shows steps 25, 50 and 75, so both trainers are timed over steps 25-75 of the epoch.
    timeout -s INT ${T16:-420} python3 benchmarks/train_vs_reference.py --sizes 224 \
      --model resnet50 --device cuda --amp fp16 --batch-size 64 --workers 12 \
      --large-per-class 480 --large-range 300 500 --rounds 2 --skip 25 --timeout 150 \
      --json "$OUT/stream16.json" 2>&1 | tee "$OUT/stream16.log" | tail -30 ;;
  full16)
    # The experiments' full profiles at once on the one GPU, each stopped (SIGINT: finished runs
    # are kept, and a rerun of the same command resumes) before the device's 10-minute limit.
    T=${BATCH_SECONDS:-540}; XP=/tmp/xp; mkdir -p $XP
    NOTE="Ran on one GPU at the same time as the other full profiles (one process each), so its times are not of an idle GPU."
    xp() { local name=$1; shift
      timeout -s INT $T python3 -m convzoo experiment $name --device cuda --data-dir "$CIFAR" \
        --out docs/experiments/full --runs $XP/$name --note "$NOTE" "$@" > "$OUT/xp-$name.log" 2>&1; }
    xp relu-vs-tanh --profile full --seeds 1 &
    xp degradation --profile full --seeds 1 --set 'depths=[20, 56]' &
    xp dropout --profile full --seeds 2 &
    wait
    tar czf "$OUT/pages.tgz" docs/experiments/full
    tar czf "$OUT/runs.tgz" --exclude='*.safetensors' --exclude=checkpoints -C / tmp/xp
    tail -n 3 "$OUT"/xp-*.log ;;
  *) echo "unknown stage $stage"; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# What a session with a CUDA machine runs, in stages (docs/gpu.md records the results):
#
#   bash scripts/gpu_session.sh DATA OUT check   # CUDA tests (tests/test_cuda.py, gemm, engine)
#   bash scripts/gpu_session.sh DATA OUT bench   # benchmarks/engine.py + models_vs_torchvision
#   bash scripts/gpu_session.sh DATA OUT probe   # resnet20 training throughput, 3 settings
#   bash scripts/gpu_session.sh DATA OUT batch   # in parallel: resnet20 for the shipped weights
#                                                # and the experiments' larger settings
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
    # One process per job on the one GPU (small models leave it mostly idle, so they overlap);
    # each is stopped by SIGTERM/SIGINT before the device's 10-minute limit. A stopped training
    # run leaves a checkpoint (resume with --resume); an experiment reuses finished run folders.
    T=${BATCH_SECONDS:-540}; XP=/tmp/xp; R=/tmp/runs; mkdir -p $XP $R
    [ -d "$DATA/carry-runs" ] && cp -r "$DATA/carry-runs/." /tmp/
    xp() { local name=$1; shift
      timeout -s INT $T python3 -m convzoo experiment $name --device cuda --data-dir "$CIFAR" \
        --out docs/experiments/full --runs $XP/$name --note "$NOTE" "$@" > "$OUT/xp-$name.log" 2>&1; }
    NOTE="Ran on one H100 at the same time as five other jobs (resnet20 training and the other experiments, one process each), so its times are not of an idle GPU."
    R20=$R/resnet20-c10
    if [ -f $R20/checkpoints/.resume-me ] || ls $R20/checkpoints/*.pt >/dev/null 2>&1; then
      r20=(--resume $R20); else r20=(resnet20 --data folder --data-dir "$CIFAR" --val-split test \
      --epochs 50 --batch-size 128 --lr 0.1 --nesterov --wd 5e-4 --lr-scheduler cosine \
      --device cuda --out $R20); fi
    ( timeout -s TERM $T python3 -m convzoo train "${r20[@]}" > "$OUT/resnet20.log" 2>&1 ) &
    xp dropout --profile full &
    xp relu-vs-tanh --profile full --seeds 1 --set 'lrs=[0.01, 0.02, 0.05]' &
    xp degradation --profile full --seeds 1 --set 'depths=[20, 56]' --set epochs=6 &
    xp batchnorm --profile full --seeds 1 --set cifar_epochs=6 &
    xp architectures --profile full --seeds 1 --set epochs=5 &
    wait
    tar czf "$OUT/pages.tgz" docs/experiments/full
    tar czf "$OUT/runs.tgz" --exclude='*.safetensors' --exclude=checkpoints -C / tmp/xp
    tar czf "$OUT/resnet20.tgz" -C / tmp/runs
    ls -la "$OUT"; tail -n 3 "$OUT"/*.log ;;
  finish)
    # The second half of `batch` on a fresh machine, with its finished run folders carried back
    # in DATA/carry-runs: resnet20 resumes from its checkpoint; experiments reuse finished runs.
    T=${BATCH_SECONDS:-300}; XP=/tmp/xp; R20=/tmp/runs/resnet20-c10
    cp -r "$DATA/carry-runs/." /tmp/
    NOTE="Ran on one H100 partly at the same time as other jobs (resnet20 training, the other experiments), so its times are not of an idle GPU; finished runs of an earlier, interrupted session on another H100 were reused."
    xp() { local name=$1 out=$2; shift 2
      timeout -s INT $T python3 -m convzoo experiment $name --device cuda --data-dir "$CIFAR" \
        --out $out --runs $XP/$name --note "$NOTE" "$@" >> "$OUT/xp.log" 2>&1; }
    ( timeout -s TERM $T python3 -m convzoo train --resume $R20 > "$OUT/resnet20.log" 2>&1 ) &
    xp dropout docs/experiments/full --profile full --seeds 2 &
    xp architectures docs/experiments/full --profile full --seeds 1 --set epochs=5 &
    xp relu-vs-tanh /tmp/discard1 --profile full --seeds 1 --set 'lrs=[0.01]' &
    xp relu-vs-tanh /tmp/discard2 --profile full --seeds 1 --set 'lrs=[0.02]' &
    wait
    xp relu-vs-tanh docs/experiments/full --profile full --seeds 1 --set 'lrs=[0.01, 0.02]'
    tar czf "$OUT/pages.tgz" docs/experiments/full
    tar czf "$OUT/runs.tgz" --exclude='*.safetensors' --exclude=checkpoints -C / tmp/xp
    tar czf "$OUT/resnet20.tgz" --exclude=checkpoints -C / tmp/runs
    tail -n 2 "$OUT"/*.log ;;
  *) echo "unknown stage $stage"; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# Record one machine for cross-machine comparison: `aia detect --json` and CPU-EP
# benchmarks of two packaged open models (PP-OCRv6 det 640x640, Silero VAD) over
# a threads sweep, appended to one JSON Lines file for `aia compare`.
#
#   bash benchmarks/cross_machine.sh OUTDIR PPOCR_DET.onnx SILERO_VAD.onnx
#
# (the .onnx files are those that the rapidocr and silero-vad packages ship).
set -euo pipefail
out=${1:?OUTDIR}; det=${2:?ppocr det onnx}; vad=${3:?silero vad onnx}
mkdir -p "$out"
host=$(hostname)
python3 -m aialliance_cli detect --json > "$out/detect-$host.json"
python3 -m aialliance_cli detect > "$out/detect-$host.txt" 2>&1 || true
max=$(nproc)
for t in 1 2 4 8 16; do
  [ "$t" -le "$max" ] || continue
  python3 -m aialliance_cli bench "$det" --ep cpu --threads "$t" --warmup 3 -n 20 \
    --dim DynamicDimension.1=640 --dim DynamicDimension.2=640 --out "$out/bench-$host.jsonl" \
    > /dev/null
done
# Silero's dims have no names: a small profile gives the tensors' shapes.
cat > "$out/silero-vad-file.yaml" <<YAML
name: silero-vad
model: {file: $(realpath "$vad")}
inputs:
  dims: {batch: 1}
  tensors:
    input: {synthesize: random, low: -0.5, high: 0.5, seed: 0, dtype: float32, shape: [batch, 512]}
    state: {synthesize: zeros, dtype: float32, shape: [2, batch, 128]}
    sr: {value: 16000, dtype: int64}
YAML
python3 -m aialliance_cli bench "$out/silero-vad-file.yaml" --ep cpu --threads 1 --warmup 20 \
  -n 500 --out "$out/bench-$host.jsonl" > /dev/null
echo "wrote $out"

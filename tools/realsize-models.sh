#!/usr/bin/env bash
# Real-size model init -> info -> score -> generate -> reload, one model at a time (issue 8, by hand).
# Run from the repository root: tools/realsize-models.sh > realsize.log (needs about 8 GB of memory and 4 GB of disk at a time).
E="${EMAPG:-./emapg}"
T="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/tokenizers"   # tools/goldens/fetch-tokenizers.sh fills it
mkdir -p "${OUT:-/tmp/realsize}"
for pair in qwen2.5-0.5b:qwen2_5 qwen3-0.6b:qwen3 llama-3.2-1b:llama3 qwen2.5-1.5b:qwen2_5 r1-distill-qwen-1.5b:qwen2_5 qwen3-1.7b:qwen3; do
  like=${pair%%:*}; tok=${pair##*:}; d=${OUT:-/tmp/realsize}/$like
  rm -rf $d
  echo "=== $like"
  /usr/bin/time -f "init: %e s, peak RSS %M KB" $E model init --like $like --tokenizer $T/$tok --out $d 2>&1 | grep -E "parameters|dtype|init:|error" | cut -c1-160
  $E model info --model $d --json | python3 -c "import json,sys; d=json.load(sys.stdin); print('info:', d['architecture'], d['parameters'], d['dtype'], d['vocab_size'])"
  /usr/bin/time -f "score: %e s, peak RSS %M KB" $E model score --model $d --text "The capital of France is" --top 3 --json 2>&1 | python3 -c "
import sys,json
lines=sys.stdin.read().strip().split('\n')
d=json.loads(lines[0]); print('score: ids', d['ids'], 'last top', d['positions'][-1]['top_ids']); print(lines[-1])"
  /usr/bin/time -f "generate: %e s, peak RSS %M KB" $E model generate --model $d --prompt "What is 2+2?" --chat --max-new-tokens 4 --json 2>&1 | tail -2 | cut -c1-200
  /usr/bin/time -f "bench load: %e s, peak RSS %M KB" $E bench load --model $d --reps 1 2>&1 | grep -E "median|peak|load:" | head -4 | cut -c1-200
  du -sh $d | cut -f1
  rm -rf $d
done

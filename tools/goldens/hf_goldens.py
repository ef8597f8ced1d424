#!/usr/bin/env python3
"""Makes the parity fixtures from the reference implementations themselves (run where transformers is installed,
e.g. the GPU box; CI never runs this). Writes into $OUT (default ./goldens-out):

  tokenizers/<name>.json   HF `tokenizers` (tokenizer.json) encodings of cases.TEXTS, with and without special
                           tokens, their decodings, and transformers' apply_chat_template(...) of cases.CHATS
                           (rendered text and ids) from the template in tokenizer_config.json.
  models/<case>/           transformers' save_pretrained of a tiny randomly initialised Qwen2 / Qwen3 / Llama
                           (seeded), and golden.json: input ids, position ids, attention mask, float32 logits
                           at every position, and greedy generation from transformers' generate().

Usage: python3 hf_goldens.py --tokenizers DIR(with qwen3/ qwen2_5/ llama3/) [--out DIR]
"""
import argparse, json, os, sys
import torch
import transformers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
import tokenizers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import TEXTS, CHATS


def tokenizer_goldens(tok_root, out):
    os.makedirs(os.path.join(out, "tokenizers"), exist_ok=True)
    for name in sorted(os.listdir(tok_root)):
        d = os.path.join(tok_root, name)
        if not os.path.isfile(os.path.join(d, "tokenizer.json")):
            continue
        raw = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        hf = AutoTokenizer.from_pretrained(d)
        enc = []
        for t in TEXTS:
            ids = raw.encode(t, add_special_tokens=False).ids
            ids_special = raw.encode(t, add_special_tokens=True).ids
            enc.append({"text": t, "ids": ids, "ids_with_special": ids_special,
                        "decoded": raw.decode(ids, skip_special_tokens=False),
                        "decoded_skip_special": raw.decode(ids, skip_special_tokens=True)})
        chats = []
        for c in CHATS:
            kw = {}
            if "enable_thinking" in c:
                kw["enable_thinking"] = c["enable_thinking"]
            text = hf.apply_chat_template(c["messages"], tokenize=False, add_generation_prompt=c["add_generation_prompt"], **kw)
            ids = hf(text, add_special_tokens=False)["input_ids"]
            chats.append({**c, "text": text, "ids": ids})
        doc = {"reference": f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}",
               "vocab_size_with_added": raw.get_vocab_size(with_added_tokens=True),
               "encodings": enc, "chats": chats}
        with open(os.path.join(out, "tokenizers", f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
        print(f"tokenizer {name}: {len(enc)} texts, {len(chats)} chats")


COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, initializer_range=0.2,
              bos_token_id=1, eos_token_id=2)

MODEL_CASES = {
    "qwen2-tied": ("Qwen2Config", "Qwen2ForCausalLM", dict(tie_word_embeddings=True, rope_theta=1000000.0, use_sliding_window=False), torch.float32, None),
    "qwen2-untied-bf16": ("Qwen2Config", "Qwen2ForCausalLM", dict(tie_word_embeddings=False, rope_theta=10000.0, use_sliding_window=False), torch.bfloat16, None),
    "qwen2-sharded": ("Qwen2Config", "Qwen2ForCausalLM", dict(tie_word_embeddings=False, rope_theta=10000.0, use_sliding_window=False), torch.float32, "60KB"),
    "qwen3-tied": ("Qwen3Config", "Qwen3ForCausalLM", dict(tie_word_embeddings=True, head_dim=32, rope_theta=1000000.0, attention_bias=False, use_sliding_window=False), torch.float32, None),
    "qwen3-untied-f16": ("Qwen3Config", "Qwen3ForCausalLM", dict(tie_word_embeddings=False, head_dim=24, rope_theta=10000.0, attention_bias=False, use_sliding_window=False), torch.float16, None),
    "llama3-tied": ("LlamaConfig", "LlamaForCausalLM", dict(tie_word_embeddings=True, rope_theta=500000.0, attention_bias=False, mlp_bias=False,
                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}), torch.float32, None),
    "llama-bias-untied": ("LlamaConfig", "LlamaForCausalLM", dict(tie_word_embeddings=False, rope_theta=10000.0, attention_bias=True, mlp_bias=False, head_dim=16), torch.bfloat16, None),
}


def model_goldens(out):
    g = torch.Generator().manual_seed(1234)
    lengths, pad_left = 40, [0, 7]
    ids = torch.randint(3, 256, (2, lengths), generator=g)
    mask = torch.ones(2, lengths, dtype=torch.long)
    for b, p in enumerate(pad_left):
        mask[b, :p] = 0
        ids[b, :p] = 0
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    for i, (case, (cfg_name, cls_name, extra, dtype, shard)) in enumerate(MODEL_CASES.items()):
        torch.manual_seed(1000 + i)
        cfg = getattr(transformers, cfg_name)(**COMMON, **extra)
        model = getattr(transformers, cls_name)(cfg).eval()
        model.generation_config.eos_token_id = None
        with torch.no_grad():   # non-zero norm weights and biases so that every tensor matters
            for n, p in model.named_parameters():
                if n.endswith("norm.weight") or n.endswith("bias"):
                    p.add_(torch.randn(p.shape) * 0.1)
        model = model.to(dtype)
        d = os.path.join(out, "models", case)
        kw = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(d, safe_serialization=True, **kw)
        ref = model.float()
        with torch.no_grad():
            logits = ref(input_ids=ids, attention_mask=mask, position_ids=pos).logits
            gen = ref.generate(input_ids=ids[:1, :12], attention_mask=mask[:1, :12], max_new_tokens=16, do_sample=False, pad_token_id=0)
        golden = {"reference": f"transformers {transformers.__version__}, torch {torch.__version__}",
                  "note": "logits of the checkpoint upcast to float32 (model.float()), float32 compute on CPU",
                  "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "position_ids": pos.tolist(),
                  "logits": logits.tolist(), "greedy_prompt": ids[0, :12].tolist(), "greedy_new_ids": gen[0, 12:].tolist()}
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump(golden, f)
        print(f"model {case}: {sum(p.numel() for p in model.parameters())} params, files {sorted(os.listdir(d))}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizers", required=True)
    ap.add_argument("--out", default=os.environ.get("OUT", "goldens-out"))
    a = ap.parse_args()
    print(f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, torch {torch.__version__}")
    torch.set_num_threads(4)
    model_goldens(a.out)
    tokenizer_goldens(a.tokenizers, a.out)

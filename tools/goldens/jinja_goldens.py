#!/usr/bin/env python3
"""Chat-template goldens beyond hf_goldens.py's: the templates of tokenizer_config.json (and variants of them made
by exact string replacements: Meta's Llama-3-Instruct form with {% if add_generation_prompt %}, Qwen2.5-Math's
default system prompt) rendered by Jinja2 configured exactly as transformers' apply_chat_template configures it
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson with ensure_ascii=False,
raise_exception, strftime_now; render(messages=, tools=None, documents=None, add_generation_prompt=, **special
tokens, **kwargs)) on cases that stress the templates' branches: tool turns, reasoning_content, several </think>,
roles without a branch, Python str.strip() whitespace, system turns in the middle.

Before writing, it renders hf_goldens' chats (cases.CHATS) and asserts that the output equals the committed
transformers goldens (Fixtures/hf/tokenizers/*.json), which checks that this configuration is transformers'.

Usage: python3 tools/goldens/jinja_goldens.py .cache/tokenizers tests/EmaPg.Tests/Fixtures/hf/chat-jinja.json
"""
import json, os, sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import CHATS

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special_tokens(cfg):
    out = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        v = cfg.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        if v is not None:
            out[key] = v
    if cfg.get("additional_special_tokens"):
        out["additional_special_tokens"] = cfg["additional_special_tokens"]
    return out


def render(env, template, cfg, case):
    kw = {"enable_thinking": case["enable_thinking"]} if "enable_thinking" in case else {}
    return env.from_string(template).render(messages=case["messages"], tools=None, documents=None,
                                            add_generation_prompt=case["add_generation_prompt"], **special_tokens(cfg), **kw)


LLAMA3_PROMPT = "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
QWEN25_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
QWEN25_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\\\boxed{}."   # Jinja source text: \\boxed
QWEN25_QUOTE_SYSTEM = "It\\'s a \\\"test\\\" system prompt:\\n\\tbe brief."                         # Jinja escapes \' \" \n \t

TEMPLATES = [
    {"name": "qwen3", "base": "qwen3", "format": "qwen3", "replacements": []},
    {"name": "qwen2_5", "base": "qwen2_5", "format": "qwen2.5", "replacements": []},
    {"name": "qwen2_5-math-system", "base": "qwen2_5", "format": "qwen2.5", "replacements": [[QWEN25_SYSTEM, QWEN25_MATH_SYSTEM]]},
    {"name": "qwen2_5-escaped-system", "base": "qwen2_5", "format": "qwen2.5", "replacements": [[QWEN25_SYSTEM, QWEN25_QUOTE_SYSTEM]]},
    {"name": "llama3", "base": "llama3", "format": "llama3", "replacements": []},
    {"name": "llama3-instruct", "base": "llama3", "format": "llama3",
     "replacements": [[LLAMA3_PROMPT, "{% if add_generation_prompt %}" + LLAMA3_PROMPT + "{% endif %}"]]},
]


def m(role, content, **kw):
    return {"role": role, "content": content, **kw}


CASES = [
    [m("user", "hi")],
    [m("system", "S"), m("user", "u1"), m("assistant", "a1"), m("user", "u2")],
    [m("user", "weather?"), m("assistant", "calling"), m("tool", "{\"t\": 21}"), m("tool", "sunny"), m("user", "thanks")],
    [m("user", "Q"), m("assistant", "<think>r1</think>a1"), m("user", "<tool_response>\nx\n</tool_response>"), m("assistant", "<think>\nr2\n</think>\n\nfinal")],
    [m("user", "Q"), m("assistant", "C", reasoning_content="\nR\n")],
    [m("user", "Q1"), m("assistant", "A1", reasoning_content="R1"), m("user", "Q2"), m("assistant", "A2", reasoning_content="R2")],
    [m("user", "Q"), m("assistant", "<think>a</think>b</think>\n\nc")],
    [m("user", "Q"), m("assistant", "pre<think>x<think>y\n\n</think>\n\n\nz")],
    [m("user", "Q"), m("assistant", "only <think> open")],
    [m("user", "Q"), m("assistant", "")],
    [m("user", "Q"), m("assistant", "a"), m("assistant", "b")],
    [m("user", "Q"), m("assistant", "<think>kept</think>a"), m("assistant", "b")],
    [m("assistant", "I start"), m("user", "ok")],
    [m("developer", "dev note"), m("user", "u")],
    [m("user", "\u001c\u001f  padded\u3000\u00a0\n\t"), m("assistant", "\u200bzero width stays\u200b")],
    [m("user", "a"), m("system", "mid system"), m("user", "b")],
    [m("system", "only system")],
    [m("user", "emoji 👨‍👩‍👧‍👦 and 𝔘𝔫𝔦 and \r\n CRLF")],
]


def main(tok_root, out_path):
    env = environment()
    # 1. This configuration reproduces transformers' own goldens.
    for name in ("qwen3", "qwen2_5", "llama3"):
        cfg = json.load(open(os.path.join(tok_root, name, "tokenizer_config.json"), encoding="utf-8"))
        golden = json.load(open(os.path.join(ROOT, "tests/EmaPg.Tests/Fixtures/hf/tokenizers", f"{name}.json"), encoding="utf-8"))
        for case, g in zip(CHATS, golden["chats"]):
            assert render(env, cfg["chat_template"], cfg, case) == g["text"], (name, case)
        print(f"{name}: Jinja2 as configured equals transformers on all {len(CHATS)} chats")
    # 2. The extra cases on every template and variant.
    doc = {"reference": f"jinja2 {jinja2.__version__} configured as transformers' apply_chat_template (checked against its goldens)", "templates": []}
    for t in TEMPLATES:
        cfg = json.load(open(os.path.join(tok_root, t["base"], "tokenizer_config.json"), encoding="utf-8"))
        template = cfg["chat_template"]
        for old, new in t["replacements"]:
            assert template.count(old) >= 1, (t["name"], old)
            template = template.replace(old, new)
        renders = []
        for messages in CASES:
            for agp in (False, True):
                for thinking in ((None, False, True) if t["format"] == "qwen3" else (None,)):
                    case = {"messages": messages, "add_generation_prompt": agp}
                    if thinking is not None:
                        case["enable_thinking"] = thinking
                    renders.append({**case, "text": render(env, template, cfg, case)})
        doc["templates"].append({**t, "bos_token": special_tokens(cfg).get("bos_token"), "renders": renders})
        print(f"{t['name']}: {len(renders)} renders")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

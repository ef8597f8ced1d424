#!/usr/bin/env node
// Stress goldens from Hugging Face's own `tokenizers` (its Node binding, the same Rust library as the Python one):
// seeded random texts built from fragments that stress byte-level BPE (astral letters and digits, combining marks
// and NFC, emoji ZWJ sequences, CRLF, runs of spaces, long digit runs, contractions, special tokens written in the
// text), their ids with and without special tokens and both decodings. Also "llama3-bos": Llama 3 with the
// TemplateProcessing post-processor of Meta's release (adds <|begin_of_text|>), to check add_special_tokens=true.
//
// Usage (the README of this folder): npm install tokenizers@0.23.2 in a scratch dir, then
//   NODE_PATH=<scratch>/node_modules node tools/goldens/npm_goldens.js .cache/tokenizers tests/EmaPg.Tests/Fixtures/hf/tokenizers-npm
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");
const version = require("tokenizers/package.json").version;

const [tokRoot, outDir] = process.argv.slice(2);
if (!tokRoot || !outDir) { console.error("usage: npm_goldens.js TOKENIZERS_DIR OUT_DIR"); process.exit(2); }

// mulberry32: a fixed, seeded PRNG so that the texts are reproducible.
function rng(seed) {
  return () => { seed |= 0; seed = (seed + 0x6D2B79F5) | 0; let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

const FRAGMENTS = [
  "a", "e", "A", "Z", "hello", "World", "the", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", "\u000b", "\u000c",
  "0", "7", "12", "345", "2024", "3.14", "-", "+", "=", "(", ")", "[", "]", "{", "}", "\\", "/", "$", "%", "#", "@", "!", "?", ".", ",", ";", ":", "'", "\"",
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "n't",
  "\u00e9", "e\u0301", "A\u030a", "\u212b", "\u2126", "\u1100\u1161", "\u1100\u1161\u11a8", "o\u0308\u0304", "\u0345", "\uFB01", "\u00a0", "\u3000", "\u200b", "\u200d", "\u2028", "\u0085",
  "\u{1D518}", "\u{1D56B}", "\u{10348}", "\u{1D7D8}", "\u{1D7EC}", "\u{20000}", "\u{2F800}", "\u{1F600}", "\u{1F44D}\u{1F3FD}",
  "\u{1F468}\u200d\u{1F469}\u200d\u{1F467}", "\u{1F3F3}\ufe0f\u200d\u{1F308}", "\u{1F1E9}\u{1F1EA}", "\u{1F9D1}\u200d\u{1F4BB}",
  "\u4e2d\u6587", "\u65e5\u672c\u8a9e", "\ud55c\uad6d\uc5b4", "\u0645\u0631\u062d\u0628\u0627", "\u0663\u0664", "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e20\u0e32\u0e29\u0e32", "\u0391\u03b2\u03b3", "\u0416\u0436",
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<tool_call>", "<|im_end", "|>", "<",
  "\u2014", "\u2026", "\u00ab", "\u201c", "\ufffd", "\u00ff", "\u0100",
];

function stressTexts() {
  const r = rng(20240607);
  const texts = [];
  for (let i = 0; i < 400; i++) {
    const n = 1 + Math.floor(r() * 24);
    let s = "";
    for (let j = 0; j < n; j++) s += FRAGMENTS[Math.floor(r() * FRAGMENTS.length)];
    texts.push(s);
  }
  for (const k of [1, 2, 3, 4, 5, 6, 7, 31, 64, 257]) { texts.push("8".repeat(k)); texts.push(" ".repeat(k) + "x"); texts.push("x" + "\n".repeat(k)); }
  texts.push("\u{1D518}".repeat(50), "\u{1F600}".repeat(40), "a\u0301".repeat(30), "\r\n".repeat(20) + "end", " \t ".repeat(33));
  return texts;
}

// The post-processor of Meta's Llama 3 release: <|begin_of_text|> before every sequence.
const LLAMA3_BOS_POST = {
  type: "TemplateProcessing",
  single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
  pair: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
         { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
  special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] } },
};

async function goldens(tokenizer, texts) {
  const out = [];
  for (const text of texts) {
    const ids = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
    const withSpecial = (await tokenizer.encode(text, null, { addSpecialTokens: true })).getIds();
    out.push({ text, ids, ids_with_special: withSpecial,
      decoded: await tokenizer.decode(ids, false), decoded_skip_special: await tokenizer.decode(ids, true) });
  }
  return out;
}

(async () => {
  fs.mkdirSync(outDir, { recursive: true });
  const texts = stressTexts();
  const jobs = [["qwen3", "qwen3", null], ["qwen2_5", "qwen2_5", null], ["llama3", "llama3", null], ["llama3-bos", "llama3", LLAMA3_BOS_POST]];
  for (const [name, base, post] of jobs) {
    const json = JSON.parse(fs.readFileSync(path.join(tokRoot, base, "tokenizer.json"), "utf8"));
    if (post) json.post_processor = post;
    const tokenizer = Tokenizer.fromString(JSON.stringify(json));
    const doc = { reference: `tokenizers ${version} (Hugging Face's Node binding of the Rust library)`, base, post_processor: post,
      encodings: await goldens(tokenizer, post ? texts.slice(0, 60) : texts) };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(doc, null, 1));
    console.log(`${name}: ${doc.encodings.length} texts`);
  }
})().catch(e => { console.error(e); process.exit(1); });

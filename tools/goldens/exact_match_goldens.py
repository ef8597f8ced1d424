#!/usr/bin/env python3
"""Reference scores of the `exact-match` reward's comparison: verl's qa_em.em_check (SQuAD's normalize_answer).

The reference is verl/utils/reward_score/qa_em.py as used by Search-R1 (normalize_answer + em_check; the file also
holds Search-R1's format checks, which are not part of this reward). Pass a copy with --reference (kept in the
ignored .cache/). The answer is taken as EmaPg does: the last <answer>…</answer> (stripped, as qa_em's
extract_solution does) when present, else the whole response; em_check decides the score.

Usage: python3 tools/goldens/exact_match_goldens.py --reference .cache/qa_em.py \
           --out tests/EmaPg.Tests/Fixtures/rewards/exact_match.jsonl
"""
import argparse
import importlib.util
import json
import re

CASES = [
    ("<answer>The Eiffel Tower</answer>", ["Eiffel Tower"]), ("<answer>eiffel tower.</answer>", ["The Eiffel Tower"]),
    ("<answer>Paris</answer> no, <answer>Lyon</answer>", ["Paris"]), ("<answer>Paris</answer> no, <answer>Lyon</answer>", ["Lyon"]),
    ("Paris", ["paris"]), ("The answer is Paris", ["Paris"]), ("<answer>  Paris \n</answer>", ["Paris"]),
    ("<answer>an apple a day</answer>", ["apple day"]), ("<answer>theatre</answer>", ["atre"]), ("<answer>Theory</answer>", ["ory"]),
    ("<answer>U.S.A.</answer>", ["USA"]), ("<answer>U. S. A.</answer>", ["USA"]), ("<answer>rock 'n' roll</answer>", ["rock n roll"]),
    ("<answer>New-York</answer>", ["newyork"]), ("<answer>New York</answer>", ["New-York"]), ("<answer>1,000</answer>", ["1000"]),
    ("<answer>3.14</answer>", ["314"]), ("<answer>$5</answer>", ["5"]), ("<answer>50%</answer>", ["50"]),
    ("<answer>Beyoncé</answer>", ["beyoncé"]), ("<answer>BEYONCÉ</answer>", ["beyoncé"]), ("<answer>Zürich</answer>", ["Zurich"]),
    ("<answer>café—bar</answer>", ["café bar"]), ("<answer>“quoted”</answer>", ["quoted"]), ("<answer>a\tb\nc</answer>", ["a b c"]),
    ("<answer>A</answer>", [""]), ("<answer>the</answer>", ["an"]), ("<answer></answer>", [""]), ("", [""]),
    ("<answer>NYC</answer>", ["New York City", "NYC"]), ("<answer>Big Apple</answer>", ["New York City", "NYC"]),
    ("<answer>George Washington</answer>", ["Washington"]), ("<answer>Washington</answer>", ["George Washington", "Washington"]),
    ("<answer>1776</answer>", ["1776"]), ("<answer>July 4, 1776</answer>", ["July 4 1776"]), ("<answer>4 July 1776</answer>", ["July 4 1776"]),
    ("<answer>Dr. Who</answer>", ["dr who"]), ("<answer>(B)</answer>", ["B"]), ("<answer>b</answer>", ["(b)"]),
    ("<answer>Sir Isaac Newton</answer>", ["Isaac Newton"]), ("<answer>the the the</answer>", [""]), ("<answer>thethe</answer>", ["thethe"]),
    ("<answer>An</answer>", [""]), ("<answer>anan</answer>", ["anan"]), ("<answer>a.n</answer>", ["n"]),
    ("<answer>x</answer>extra text", ["x"]), ("<answer>x", ["x"]), ("x</answer>", ["x"]), ("<ANSWER>x</ANSWER>", ["x"]),
    ("<answer>multi\nline\nanswer</answer>", ["multi line answer"]), ("<answer>İstanbul</answer>", ["istanbul"]),
    ("<answer>ﬁsh</answer>", ["fish"]), ("<answer>Σίσυφος</answer>", ["σίσυφος"]), ("<answer>100 km/h</answer>", ["100 kmh"]),
    ("<answer>e=mc^2</answer>", ["emc2"]), ("<answer>C++</answer>", ["c"]), ("<answer>C#</answer>", ["c"]), ("<answer>_under_</answer>", ["under"]),
    ("<answer>\u00a0spaced\u00a0out\u00a0</answer>", ["spaced out"]), ("<answer>a\u2003b</answer>", ["a b"]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("qa_em", a.reference)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    with open(a.out, "w") as f:
        for response, golds in CASES:
            matches = list(re.finditer(r"<answer>(.*?)</answer>", response, re.DOTALL))
            answer = matches[-1].group(1).strip() if matches else response
            f.write(json.dumps({"response": response, "golden_answers": golds, "score": float(ref.em_check(answer, golds))}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

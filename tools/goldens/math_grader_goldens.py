#!/usr/bin/env python3
"""Reference scores of the `math` reward: DeepScaleR's grader run on a broad case set.

The grader is DeepScaleR's deepscaler/rewards/math_utils/utils.py (agentica-project/deepscaler, commit
95ef74f), which descends from verl's / PRM800K's grader. It is not vendored here: pass its path with
--reference (any copy of that file; e.g. `git show 95ef74f:deepscaler/rewards/math_utils/utils.py >
.cache/deepscaler_math_utils.py`, .cache/ is ignored). It needs sympy and pylatexenc (the fixture was made
with Debian 12's python3-sympy 1.11.1 and python3-pylatexenc 2.10).

score(response, ground_truth) follows deepscaler/rewards/math_reward.py RewardMathFn exactly for the answer
and the ground truths (last \\boxed{} of the solution; a ground truth may be a list, each one boxed or not;
correct iff grade_answer_mathd or grade_answer_sympy holds for any of them). RewardMathFn also demands
<think>…</think> (a format error otherwise); this harness instead scores the text after the first </think>
when there is one and the whole response when there is none, and so does EmaPg's MathReward.

Usage: python3 tools/goldens/math_grader_goldens.py --reference .cache/deepscaler_math_utils.py \
           --out tests/EmaPg.Tests/Fixtures/rewards/math_grader.jsonl \
           --normalize-out tests/EmaPg.Tests/Fixtures/rewards/math_normalize.jsonl \
           --latex-out tests/EmaPg.Tests/Fixtures/rewards/latex_text.jsonl
"""
import argparse
import importlib.util
import json
import signal


def load(path):
    spec = importlib.util.spec_from_file_location("deepscaler_math_utils", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def score(ref, response, ground_truth):
    solution = response.split("</think>")[1] if "</think>" in response else response
    answer = ref.extract_answer(solution)
    if answer is None:
        return 0.0
    truths = ground_truth if isinstance(ground_truth, list) else [ground_truth]
    processed = []
    for t in truths:
        t = str(t)
        if "\\boxed" in t:
            p = ref.extract_answer(t)
            if p is not None:
                processed.append(p)
        else:
            processed.append(t)
    for t in processed:
        if ref.grade_answer_mathd(answer, t) or ref.grade_answer_sympy(answer, t):
            return 1.0
    return 0.0


def B(x):
    return f"The final answer is $\\boxed{{{x}}}$."


def cases():
    c = []
    # (given answer inside a box, ground truth): numbers, fractions, decimals, percent, degrees, units
    pairs = [
        ("5", "5"), ("5", "6"), ("05", "5"), ("5.0", "5"), ("5.00", "5"), ("-5", "-5"), ("- 5", "-5"), ("5", "-5"),
        ("1,000", "1000"), ("1000", "1,000"), ("1,000,000", "1000000"), ("10^6", "1000000"), ("1\\,000", "1000"),
        ("\\frac{1}{2}", "\\frac{1}{2}"), ("\\frac12", "\\frac{1}{2}"), ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\tfrac{1}{2}", "\\frac{1}{2}"), ("0.5", "\\frac{1}{2}"), ("\\frac{1}{2}", "0.5"), (".5", "\\frac{1}{2}"),
        ("1/2", "\\frac{1}{2}"), ("\\frac{1}{2}", "1/2"), ("2/4", "\\frac{1}{2}"), ("\\frac{2}{4}", "\\frac{1}{2}"),
        ("\\frac{1}{3}", "0.333"), ("0.3333333333", "\\frac{1}{3}"), ("\\frac{3}{2}", "1.5"), ("1.5", "\\frac32"),
        ("\\frac{-1}{2}", "-\\frac{1}{2}"), ("-\\frac{1}{2}", "-0.5"), ("\\frac{7}{4}", "1\\frac{3}{4}"),
        ("1\\frac{3}{4}", "\\frac{7}{4}"), ("7/4", "1 3/4"), ("\\frac{10}{4}", "\\frac{5}{2}"), ("2.5", "\\frac{5}{2}"),
        ("0.25", "\\frac14"), ("\\frac{1}{4}", "25\\%"), ("25\\%", "25"), ("25%", "25"), ("25", "25\\%"), ("0.25", "25\\%"),
        ("30^\\circ", "30"), ("30^{\\circ}", "30"), ("30", "30^\\circ"), ("30 degrees", "30"), ("\\$5", "5"), ("5 dollars", "5"),
        ("\\$5.00", "5"), ("5\\text{ cm}", "5"), ("5 \\text{ cm}", "5"), ("5\\text{ cm}^2", "5"), ("5 cm", "5"),
        ("12 inches", "12"), ("3 feet", "3"), ("60 minutes", "60"), ("2 hours", "2"), ("\\text{5}", "5"), ("\\text{(A)}", "A"),
        ("A", "\\text{A}"), ("(A)", "A"), ("B", "A"), ("\\textbf{(B)}", "B"), ("x=5", "5"), ("x = 5", "5"), ("k=5", "5"),
        ("y=2x+1", "2x+1"), ("abc=5", "5"), ("5", "x=5"), ("3 million", "3000000"), ("2 billion", "2000000000"),
        ("1.2\\times10^3", "1200"), ("1.2 \\times 10^3", "1200"), ("\\sqrt{4}", "2"), ("\\sqrt4", "2"),
        ("\\sqrt{2}", "\\sqrt2"), ("\\sqrt{8}", "2\\sqrt{2}"), ("2\\sqrt{2}", "\\sqrt{8}"), ("\\sqrt{12}", "2\\sqrt3"),
        ("\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2"), ("\\sqrt{3}/2", "\\frac{\\sqrt3}{2}"), ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"), ("\\sqrt{\\frac{1}{2}}", "\\frac{\\sqrt2}{2}"), ("1.414", "\\sqrt{2}"),
        ("\\frac{3\\sqrt{3}}{4}", "\\frac{3}{4}\\sqrt{3}"), ("3\\sqrt{3}/4", "\\frac{3\\sqrt3}{4}"), ("\\sqrt{3}", "3^{1/2}"),
        ("\\sqrt[3]{8}", "2"), ("2\\pi", "2\\pi"), ("\\pi", "3.14"), ("2\\pi", "\\pi \\cdot 2"), ("\\frac{\\pi}{2}", "\\pi/2"),
        ("\\frac{\\pi}{2}", "0.5\\pi"), ("\\pi/4", "\\frac{1}{4}\\pi"), ("4\\pi", "4 \\pi"), ("\\pi^2", "\\pi \\cdot \\pi"),
        ("\\infty", "\\infty"), ("\\infty", "-\\infty"), ("e", "e"), ("2e", "e2"),
        # algebra
        ("(x+1)^2", "x^2+2x+1"), ("x^2+2x+1", "(x+1)^2"), ("x^2+2x+2", "(x+1)^2"), ("2x+1", "1+2x"), ("2x", "x*2"),
        ("x(x+1)", "x^2+x"), ("(x-1)(x+1)", "x^2-1"), ("(a+b)^2", "a^2+2ab+b^2"), ("a^2-b^2", "(a-b)(a+b)"),
        ("\\frac{x}{2}", "x/2"), ("\\frac{x+1}{2}", "(x+1)/2"), ("\\frac{x+1}{2}", "x+\\frac{1}{2}"), ("\\frac{1}{x+1}", "1/(x+1)"),
        ("\\frac{1}{x}+\\frac{1}{y}", "\\frac{x+y}{xy}"), ("x^3", "x\\cdot x\\cdot x"), ("x^{3}", "x^3"), ("x^{10}", "x^10"),
        ("2^{10}", "1024"), ("1024", "2^{10}"), ("2^3", "8"), ("8", "2^3"), ("x^2 y", "y x^2"), ("3x-2", "-2+3x"),
        ("3(x-2)", "3x-6"), ("-(x-1)", "1-x"), ("\\sqrt{x^2}", "x"), ("\\frac{2x}{4}", "\\frac{x}{2}"), ("n(n+1)/2", "\\frac{n^2+n}{2}"),
        ("x+y+z", "z+y+x"), ("2^n", "2^n"), ("2^{n+1}", "2\\cdot 2^n"), ("\\frac{1}{2}x^2", "x^2/2"),
        ("\\sin x", "\\sin(x)"), ("\\log 2", "\\ln 2"), ("5!", "120"), ("120", "5!"), ("\\binom{5}{2}", "10"),
        # tuples, intervals, sets, lists
        ("(1,2)", "(1,2)"), ("(1, 2)", "(1,2)"), ("(2,1)", "(1,2)"), ("(1,2)", "[1,2]"), ("[1,2]", "[1,2]"), ("[1,2)", "[1,2)"),
        ("(0,\\infty)", "(0,\\infty)"), ("(0, \\infty)", "(0,\\infty)"), ("(-\\infty, 3]", "(-\\infty,3]"), ("(-\\infty,3)", "(-\\infty,3]"),
        ("(\\frac{1}{2}, 3)", "(0.5,3)"), ("(0.5, 3)", "(\\frac12,3)"), ("(1,2,3)", "(1,2,3)"), ("(1,2,3)", "(1,2)"),
        ("\\left(1,2\\right)", "(1,2)"), ("\\left( \\frac{1}{2}, \\frac{\\sqrt3}{2}\\right)", "(\\frac{1}{2},\\frac{\\sqrt{3}}{2})"),
        ("1,2", "1,2"), ("1, 2", "1,2"), ("2, 1", "1,2"), ("1 and 2", "1,2"), ("1 or 2", "1,2"), ("\\{1,2\\}", "\\{1,2\\}"),
        ("(1,000, 2)", "(1000,2)"), ("(x+1, 2x)", "(1+x, x*2)"), ("[-2, 2]", "[-2,2]"), ("(-2,2)", "[-2,2]"),
        ("(-\\infty,-1)\\cup(1,\\infty)", "(-\\infty,-1)\\cup(1,\\infty)"), ("(-\\infty, -1) \\cup (1, \\infty)", "(-\\infty,-1)\\cup(1,\\infty)"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
        # text answers
        ("\\text{Yes}", "Yes"), ("yes", "Yes"), ("\\text{no}", "Yes"), ("\\text{Monday}", "Monday"), ("Monday", "\\text{monday}"),
        ("\\text{east}", "\\text{East}"), ("\\mathrm{II}", "II"), ("\\text{odd}", "\\text{even}"),
        # misc latex
        ("1\\!000", "1000"), ("\\left|x\\right|", "|x|"), ("-0", "0"), ("0.0", "0"), ("1e3", "1000"), ("10", "10.0001"),
        ("3.14159", "\\pi"), ("0.1+0.2", "0.3"), ("\\frac{1}{3}+\\frac{1}{6}", "\\frac12"), ("2+3", "5"), ("5", "2+3"),
        ("\\frac{6}{3}", "2"), ("2", "\\frac{6}{3}"), ("\\frac{4}{1}", "4"), ("4", "\\frac{4}{1}"), ("\\sqrt{16}", "4"),
        ("i", "i"), ("1+i", "1+i"), ("2i", "2 i"), ("\\frac{1+\\sqrt5}{2}", "\\frac{\\sqrt5+1}{2}"), ("\\frac{1-\\sqrt{5}}{2}", "\\frac{1+\\sqrt5}{2}"),
        ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{3}+\\sqrt{2}"), ("\\sqrt{5+2\\sqrt{6}}", "\\sqrt2+\\sqrt3"), ("2\\sqrt{3}-1", "-1+2\\sqrt{3}"),
        ("\\frac{\\sqrt{6}}{3}", "\\sqrt{\\frac{2}{3}}"), ("\\frac{2}{\\sqrt{3}}", "\\frac{2\\sqrt{3}}{3}"),
        ("3\\sqrt{2}", "\\sqrt{18}"), ("\\frac{9}{2}", "4\\frac{1}{2}"), ("4 \\frac{1}{2}", "4.5"), ("-\\frac{3}{4}", "\\frac{-3}{4}"),
        ("\\frac{3}{-4}", "-\\frac34"), ("\\dfrac{100}{3}", "33\\frac{1}{3}"), ("33.33", "\\frac{100}{3}"),
        ("", "5"), ("{}", "5"), ("\\{5\\}", "5"), ("{5}", "5"), ("5.", "5"), ("5.5", "5.50"), ("5.50", "5.5"), ("0.1", ".1"),
        ("10\\%", "0.1"), ("0.1", "10\\%"), ("50\\%", "\\frac12"), ("\\$1,000", "1000"), ("1,234.5", "1234.5"), ("12,34", "1234"),
        ("\\frac{a}{b}", "a/b"), ("a/b", "\\frac{a}{b}"), ("\\frac ab", "\\frac{a}{b}"), ("\\frac{1}{2}\\pi r^2", "\\frac{\\pi r^2}{2}"),
        ("x \\in [1,2]", "[1,2]"), ("x\\ge 2", "x \\geq 2"), ("x>2", "(2,\\infty)"), ("\\pm 2", "\\pm2"), ("2, -2", "\\pm 2"),
    ]
    for given, gt in pairs:
        c.append({"response": B(given), "ground_truth": gt})
    # boxed extraction edge cases
    c += [
        {"response": "no box here, the answer is 5", "ground_truth": "5"},
        {"response": "\\boxed{3} then later \\boxed{5}", "ground_truth": "5"},
        {"response": "\\boxed{5} then later \\boxed{3}", "ground_truth": "5"},
        {"response": "\\boxed{\\frac{1}{2}}", "ground_truth": "\\frac12"},
        {"response": "\\boxed{\\frac{1}{2}", "ground_truth": "\\frac12"},
        {"response": "\\boxed{{5}}", "ground_truth": "5"},
        {"response": "\\boxed{\\text{\\{1,2\\}}}", "ground_truth": "\\{1,2\\}"},
        {"response": "\\fbox{5}", "ground_truth": "5"},
        {"response": "\\boxed 5", "ground_truth": "5"},
        {"response": "\\boxed{5}", "ground_truth": "\\boxed{5}"},
        {"response": "\\boxed{5}", "ground_truth": "The answer is \\boxed{5}."},
        {"response": "\\boxed{5}", "ground_truth": ["4", "5"]},
        {"response": "\\boxed{5}", "ground_truth": ["4", "6"]},
        {"response": "\\boxed{5}", "ground_truth": ["\\boxed{5}", "6"]},
        {"response": "\\boxed{0.5}", "ground_truth": ["1/3", "\\frac{1}{2}"]},
        {"response": "\\boxed{5}", "ground_truth": []},
        {"response": "\\boxed{5}", "ground_truth": ""},
        {"response": "\\boxed{5}", "ground_truth": "\\boxed{5"},
        {"response": "<think>maybe \\boxed{4}</think> so \\boxed{5}", "ground_truth": "5"},
        {"response": "<think>maybe \\boxed{5}</think> so \\boxed{4}", "ground_truth": "5"},
        {"response": "<think>\\boxed{5}</think> no box after", "ground_truth": "5"},
        {"response": "\\boxed{\\boxed{5}}", "ground_truth": "5"},
        {"response": "$\\boxed{x^{2}+1}$", "ground_truth": "x^2+1"},
        {"response": "\\boxed{ 5 }", "ground_truth": "5"},
        {"response": "\\boxed{5}\n", "ground_truth": "5"},
        {"response": "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "ground_truth": "\\left( 3, \\frac{\\pi}{2} \\right)"},
        {"response": "\\boxed{(3, \\frac{\\pi}{2})}", "ground_truth": "\\left( 3, \\frac{\\pi}{2} \\right)"},
        {"response": "\\boxed{\\frac{1}{2}} and \\fbox{3}", "ground_truth": "\\frac12"},
        {"response": "\\fbox{3} and \\boxed{\\frac{1}{2}}", "ground_truth": "\\frac12"},
        {"response": "\\boxed{24 + 14*x + (-13)*x^2 - 2*x^3 + x^4}", "ground_truth": ["10", "$x^{4}-2 x^{3}-13 x^{2}+14 x+24$"]},
        {"response": "\\boxed{x^4-2x^3-13x^2+14x+24}", "ground_truth": ["10", "$x^{4}-2 x^{3}-13 x^{2}+14 x+24$"]},
        {"response": "\\boxed{\\$18.90}", "ground_truth": "18.90"},
        {"response": "\\boxed{18.9}", "ground_truth": "\\$18.90"},
        {"response": "\\boxed{5", "ground_truth": "5"},
        {"response": "\\boxed{}", "ground_truth": "5"},
        {"response": "\\boxed{}", "ground_truth": ""},
        {"response": "\\boxed{5}", "ground_truth": 5},
        {"response": "\\boxed{2.5}", "ground_truth": 2.5},
        {"response": "\\boxed{5}", "ground_truth": [5, "6"]},
    ]
    return c + generated_cases()


def generated_cases():
    """Seeded random variants of the common answer forms: fractions, decimals, mixed numbers, radicals, π multiples,
    polynomials (expanded vs factored, and one coefficient off), tuples of fractions."""
    import random
    from fractions import Fraction
    rng = random.Random(0)
    c = []
    for _ in range(30):
        p, q = rng.randint(1, 40), rng.randint(2, 12)
        f = Fraction(p, q)
        forms = [f"\\frac{{{p}}}{{{q}}}", f"\\dfrac{{{f.numerator}}}{{{f.denominator}}}", f"{p}/{q}", f"{float(f):.4f}",
                 f"{float(f)}", f"-\\frac{{{p}}}{{{q}}}", f"{f.numerator}/{f.denominator}"]
        if f.numerator > f.denominator and f.denominator > 1:
            w, r = divmod(f.numerator, f.denominator)
            forms.append(f"{w}\\frac{{{r}}}{{{f.denominator}}}")
        gt = rng.choice([f"\\frac{{{f.numerator}}}{{{f.denominator}}}", f"{f.numerator}/{f.denominator}"])
        c.append({"response": B(rng.choice(forms)), "ground_truth": gt})
    for _ in range(25):
        k, m = rng.randint(2, 6), rng.choice([2, 3, 5, 6, 7, 10])
        forms = [f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}", f"{k}\\sqrt{m}", f"\\sqrt{{{m}}}\\cdot {k}", f"{k + 1}\\sqrt{{{m}}}",
                 f"\\frac{{{2 * k}\\sqrt{{{m}}}}}{{2}}", f"{k}*\\sqrt({m})"]
        c.append({"response": B(rng.choice(forms)), "ground_truth": rng.choice([f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}"])})
    for _ in range(20):
        a, b = rng.randint(1, 9), rng.randint(2, 9)
        forms = [f"\\frac{{{a}\\pi}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}\\pi", f"{a}\\pi/{b}", f"\\frac{{\\pi}}{{{b}}}", f"{a}\\pi"]
        c.append({"response": B(rng.choice(forms)), "ground_truth": rng.choice([f"\\frac{{{a}\\pi}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}\\pi"])})
    for _ in range(30):
        a, b = rng.randint(-6, 6), rng.randint(-6, 6)
        var = rng.choice("xnt")
        s1, p1 = a + b, a * b
        expanded = f"{var}^2{s1:+d}{var}{p1:+d}".replace("+0" + var, "").replace("+0", "")
        factored = f"({var}{a:+d})({var}{b:+d})"
        wrong = f"{var}^2{s1 + 1:+d}{var}{p1:+d}"
        given = rng.choice([expanded, factored, wrong, f"({var}{a:+d})*({var}{b:+d})", f"{p1:+d}{s1:+d}{var}+{var}^2"])
        c.append({"response": B(given), "ground_truth": rng.choice([expanded, factored])})
    for _ in range(15):
        p, q, r = rng.randint(1, 9), rng.randint(2, 9), rng.randint(-5, 5)
        gt = f"\\left(\\frac{{{p}}}{{{q}}}, {r}\\right)"
        given = rng.choice([f"({p}/{q}, {r})", f"(\\frac{{{p}}}{{{q}}},{r})", f"[\\frac{{{p}}}{{{q}}}, {r}]", f"({r}, \\frac{{{p}}}{{{q}}})",
                            f"\\left( {p / q}, {r} \\right)"])
        c.append({"response": B(given), "ground_truth": gt})
    for _ in range(15):
        n = rng.randint(1, 99)
        given = rng.choice([f"{n}\\%", f"{n}%", f"{n / 100}", f"{n}", f"{n}.0", f"{n} \\text{{ percent}}", f"\\{n}"])
        c.append({"response": B(given), "ground_truth": rng.choice([f"{n}", f"{n}\\%"])})
    return c


LATEX_SNIPPETS = [
    r" \frac{1}{2}", r" \frac{x+1}{2}", r"\sqrt{3}", r"\sqrt{x+1}", r" \frac{\sqrt{3}}{2}", r"2\pi", r"\infty", r"\text{abc}",
    r"x \cdot y", r"\cup", r"\sqrt[3]{2}", r"\pm 2", r"\le", r"\mathrm{cm}", r"\ln 2", r"\log_2 8", r"\sin x", r"\cos(x)",
    r"a_{1}", r"\{1,2\}", r"\dots", r"\alpha", r"\theta", r"\neq", r"\%", r"\$", r"\pi^2", r"\binom{5}{2}", r"\emph{x}",
    r"\mbox{x}", r"\textbf{A}", r"\overline{AB}", r"\angle", r"\circ", r"\times", r"\div", r"\approx", r"\,", r"\ ", r"\;",
    r"\quad", r"\foo{1}", r" \frac12", r" \frac{1}2", r"\sqrt2", r"\left( 1 \right)", r"e^{i\pi}", r"\cdots", r"\ldots",
    r"\sqrt{}", r"x^{2}", r"\mathbf{x}", r"\operatorname{lcm}", r"\{", r"\|", r"\prime", r" \frac{1}{x+1}", r"3 \frac{1}{2}",
    r" \frac{1}{\sqrt{2}}", r"\sqrt{\frac{1}{2}}", r"{1}", r"\sqrt{2}x", r"\sqrt{ 3 }", r"\mathrm{x}y", r"\text{ cm}",
    r"a\text{b}c", r"\hbox{x}", r"\textit{x}", r"\geq", r"\ge", r"\lt", r"\cdot2", r"\sqrt {2}", r"\frac {1} {2}", r"\pi r",
    r"\left\{1\right\}", r"\displaystyle 5", r"\qquad", r"\\", r"~", r"&", r"3\times 10^3", r"\operatorname{sgn}x",
    r"\boxed{5}", r"\bigl(", r"\mid", r"\to", r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",
    r"\begin{bmatrix}a&b\end{bmatrix}", r"\begin{array}{cc}1&2\end{array}", r"\begin{cases}x\\y\end{cases}",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--normalize-out", help="also write the reference's two normalisations of every answer string")
    ap.add_argument("--latex-out", help="also write pylatexenc's LatexNodes2Text output on LATEX_SNIPPETS")
    a = ap.parse_args()
    ref = load(a.reference)

    def alarm(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, alarm)
    with open(a.out, "w") as f:
        for case in cases():
            signal.alarm(60)
            try:
                s = score(ref, case["response"], case["ground_truth"])
            finally:
                signal.alarm(0)
            f.write(json.dumps({**case, "score": s}) + "\n")
    if a.latex_out:
        from pylatexenc import latex2text
        conv = latex2text.LatexNodes2Text()
        with open(a.latex_out, "w") as f:
            for x in LATEX_SNIPPETS:
                f.write(json.dumps({"latex": x, "text": conv.latex_to_text(x)}) + "\n")
    if a.normalize_out:
        seen = []
        for case in cases():
            given = ref.extract_answer(case["response"].split("</think>")[1] if "</think>" in case["response"] else case["response"])
            truths = case["ground_truth"] if isinstance(case["ground_truth"], list) else [case["ground_truth"]]
            for x in [given] + [str(t) for t in truths]:
                if x is not None and x not in seen:
                    seen.append(x)
        with open(a.normalize_out, "w") as f:
            for x in seen:
                f.write(json.dumps({"input": x, "mathd": ref.mathd_normalize_answer(x), "normalize": ref._normalize(x)}) + "\n")


if __name__ == "__main__":
    main()

using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;

namespace EmaPg.Rewards.Math;

/// <summary>
/// The two string normalisations of the reference grader (DeepScaleR / verl / PRM800K): Hendrycks' MATH
/// normalisation (<see cref="Mathd"/>) and the one that prepares answers for the symbolic check
/// (<see cref="ForSymbolic"/>). Quirks are kept on purpose: agreement with the reference is the contract.
/// </summary>
internal static partial class AnswerNormalizer
{
    /// <summary>Hendrycks' normalisation: \text{} unwrap, \dfrac → \frac, \left/\right, degrees, $, units, %, 0.5 → \frac{1}{2}, a/b → \frac{a}{b}.</summary>
    public static string Mathd(string answer)
    {
        answer = answer.Trim();
        var m = TextWrap().Match(answer);
        if (m.Success) answer = m.Groups["text"].Value.Trim();
        return StripString(answer) ?? answer;
    }

    /// <summary>_strip_string; null where the reference raises (its caller then keeps the input).</summary>
    private static string? StripString(string s)
    {
        s = s.Replace("\n", "").Replace("\\!", "").Replace("\\\\", "\\").Replace("tfrac", "frac").Replace("dfrac", "frac")
             .Replace("\\left", "").Replace("\\right", "").Replace("^{\\circ}", "").Replace("^\\circ", "").Replace("\\$", "");
        if (s.Contains("\\text{ "))
        {
            var parts = s.Split("\\text{ ");
            if (parts.Length != 2) return null;
            s = parts[0];
        }
        s = s.Replace("\\%", "").Replace(" .", " 0.").Replace("{.", "{0.");
        if (s.Length == 0) return s;
        if (s[0] == '.') s = "0" + s;
        var eq = s.Split('=');
        if (eq.Length == 2 && eq[0].Length <= 2) s = eq[1];
        if (s.Contains("\\sqrt"))
        {
            var parts = s.Split("\\sqrt");
            var r = parts[0];
            foreach (var part in parts.Skip(1))
            {
                if (part.Length == 0) return null;
                r += part[0] != '{' ? "\\sqrt{" + part[0] + "}" + part[1..] : "\\sqrt" + part;
            }
            s = r;
        }
        s = s.Replace(" ", "");
        var fixedFracs = FixFracs(s);
        if (fixedFracs is null) return null;
        s = fixedFracs;
        if (s == "0.5") s = "\\frac{1}{2}";
        return FixSlash(s);
    }

    private static string? FixFracs(string s)
    {
        var parts = s.Split("\\frac");
        var r = parts[0];
        foreach (var part in parts.Skip(1))
        {
            r += "\\frac";
            if (part.Length == 0) return null;
            if (part[0] == '{') { r += part; continue; }
            if (part.Length < 2) return s;
            char a = part[0], b = part[1];
            r += b != '{' ? "{" + a + "}{" + b + "}" + part[2..] : "{" + a + "}" + b + part[2..];
        }
        return r;
    }

    private static string FixSlash(string s)
    {
        var parts = s.Split('/');
        if (parts.Length != 2) return s;
        if (!PyInt(parts[0], out var a) || !PyInt(parts[1], out var b)) return s;
        if (s != $"{a}/{b}") return s;
        return "\\frac{" + a + "}{" + b + "}";
    }

    private static bool PyInt(string s, out BigInteger v) =>
        BigInteger.TryParse(s.Trim().Replace("_", ""), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v)
        && PyIntSyntax().IsMatch(s);

    private static readonly string[] Units = ["degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day",
        "week", "month", "year", "foot", "feet", "inch", "yard"];

    /// <summary>The reference's _normalize: units, words, thousands separators, LaTeX → text, spaces, braces, case, integers.</summary>
    public static string ForSymbolic(string expr)
    {
        var m = TextWrap().Match(expr);
        if (m.Success) expr = m.Groups["text"].Value;
        expr = expr.Replace("\\%", "%").Replace("\\$", "$").Replace("$", "").Replace("%", "").Replace(" or ", " , ").Replace(" and ", " , ")
            .Replace("million", "*10^6").Replace("billion", "*10^9").Replace("trillion", "*10^12");
        foreach (var unit in Units) expr = Regex.Replace(expr, unit + @"(es)?(s)? *(\^[0-9]+)?", "");
        expr = Regex.Replace(expr, @"\^ *\\circ", "");
        if (expr.Length > 0 && expr[0] == '{' && expr[^1] == '}') expr = expr[1..^1];
        expr = Regex.Replace(expr, @",\\! *", "");
        if (PyNumber.TryFloat(expr, out var f) && PyNumber.IsInt(f)) expr = new BigInteger(System.Math.Round(f, MidpointRounding.ToEven)).ToString();
        if (expr.Contains('\\')) expr = ParseLatex(expr);
        expr = Regex.Replace(expr, "- *", "-");
        expr = Regex.Replace(expr, "([0-9]) +([0-9])", "$1+$2");
        expr = expr.Replace(" ", "").Replace("{", "").Replace("}", "").ToLowerInvariant();
        if (PyNumber.StrIsInt(expr)) expr = PyNumber.StrToInt(expr);
        return expr;
    }

    private static string ParseLatex(string expr)
    {
        expr = expr.Replace("\\tfrac", "\\frac").Replace("\\dfrac", "\\frac").Replace("\\frac", " \\frac");
        expr = LatexText.ToText(expr);
        return expr.Replace("√", "sqrt").Replace("π", "pi").Replace("∞", "inf").Replace("∪", "U").Replace("·", "*").Replace("×", "*").Trim();
    }

    /// <summary>Removes thousands separators ("1,000" → "1000") but never tuple commas.</summary>
    public static string StripThousands(string expr)
    {
        while (true)
        {
            var next = Thousands().Replace(expr, "$1$3$4");
            if (next == expr) return next;
            expr = next;
        }
    }

    [GeneratedRegex(@"^\\text\{(?<text>.+?)\}$")]
    private static partial Regex TextWrap();

    [GeneratedRegex(@"^\s*[+-]?[0-9](_?[0-9])*\s*$")]
    private static partial Regex PyIntSyntax();

    [GeneratedRegex(@"(\d)(,)(\d\d\d)($|\D)")]
    private static partial Regex Thousands();
}

/// <summary>Python's float()/int()/round() semantics where the reference grader relies on them.</summary>
internal static partial class PyNumber
{
    public static bool TryFloat(string s, out double v)
    {
        v = 0;
        s = s.Trim();
        if (SpecialFloat().IsMatch(s))
        {
            var t = s.TrimStart('+', '-').ToLowerInvariant();
            v = t == "nan" ? double.NaN : (s.StartsWith('-') ? double.NegativeInfinity : double.PositiveInfinity);
            return true;
        }
        if (!FloatSyntax().IsMatch(s)) return false;
        return double.TryParse(s.Replace("_", ""), NumberStyles.Float, CultureInfo.InvariantCulture, out v);
    }

    /// <summary>_is_int: |x − round(x)| ≤ 1e−7 (false for ±∞ and NaN, where Python's round raises).</summary>
    public static bool IsInt(double x) => double.IsFinite(x) && System.Math.Abs(x - System.Math.Round(x, MidpointRounding.ToEven)) <= 1e-7;

    public static bool StrIsInt(string s) => TryFloat(AnswerNormalizer.StripThousands(s), out var v) && IsInt(v);

    /// <summary>_str_to_int: drop every comma, float(), then int() (truncation toward zero).</summary>
    public static string StrToInt(string s)
    {
        TryFloat(s.Replace(",", ""), out var v);
        return new BigInteger(System.Math.Truncate(v)).ToString();
    }

    [GeneratedRegex(@"^[+-]?(inf|infinity|nan)$", RegexOptions.IgnoreCase)]
    private static partial Regex SpecialFloat();

    [GeneratedRegex(@"^[+-]?(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?$")]
    private static partial Regex FloatSyntax();
}

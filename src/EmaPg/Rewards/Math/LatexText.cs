using System.Text;

namespace EmaPg.Rewards.Math;

/// <summary>
/// LaTeX → plain text for the subset that answers use, matching pylatexenc 2.10's LatexNodes2Text (what the
/// reference grader calls): \frac{a}{b} → a/b (no parentheses), \sqrt[n]{x} → √(x), text-style macros keep
/// their argument, symbols become Unicode, unknown macros vanish while their braced arguments stay as text.
/// </summary>
internal static class LatexText
{
    private static readonly Dictionary<string, string> Symbols = new()
    {
        ["pi"] = "π", ["infty"] = "∞", ["cdot"] = "·", ["times"] = "×", ["pm"] = "±", ["mp"] = "∓", ["le"] = "≤", ["leq"] = "≤",
        ["ge"] = "≥", ["geq"] = "≥", ["neq"] = "≠", ["ne"] = "≠", ["cup"] = "∪", ["cap"] = "∩", ["div"] = "÷", ["approx"] = "≈",
        ["circ"] = "∘", ["angle"] = "∠", ["dots"] = "…", ["ldots"] = "…", ["cdots"] = "⋯", ["to"] = "→", ["sim"] = "∼", ["mid"] = "|",
        ["in"] = "∈", ["prime"] = "'", ["dagger"] = "†", ["quad"] = "  ", ["qquad"] = "    ", ["setminus"] = "∖", ["emptyset"] = "∅",
        ["alpha"] = "α", ["beta"] = "β", ["gamma"] = "γ", ["delta"] = "δ", ["epsilon"] = "ϵ", ["varepsilon"] = "ε", ["zeta"] = "ζ",
        ["eta"] = "η", ["theta"] = "θ", ["iota"] = "ι", ["kappa"] = "κ", ["lambda"] = "λ", ["mu"] = "μ", ["nu"] = "ν", ["xi"] = "ξ",
        ["rho"] = "ρ", ["sigma"] = "σ", ["tau"] = "τ", ["phi"] = "ϕ", ["varphi"] = "φ", ["chi"] = "χ", ["psi"] = "ψ", ["omega"] = "ω",
        ["Gamma"] = "Γ", ["Delta"] = "Δ", ["Theta"] = "Θ", ["Lambda"] = "Λ", ["Pi"] = "Π", ["Sigma"] = "Σ", ["Phi"] = "Φ", ["Omega"] = "Ω",
        ["ln"] = "ln", ["log"] = "log", ["sin"] = "sin", ["cos"] = "cos", ["tan"] = "tan", ["exp"] = "exp", ["max"] = "max",
        ["min"] = "min", ["lim"] = "lim", ["det"] = "det", ["gcd"] = "gcd", ["sec"] = "sec", ["csc"] = "csc", ["cot"] = "cot",
    };

    private static readonly Dictionary<string, string> Punct = new()
    {
        [","] = " ", [";"] = " ", [":"] = " ", [" "] = " ", ["!"] = "", ["{"] = "{", ["}"] = "}", ["%"] = "%", ["$"] = "$",
        ["&"] = "&", ["#"] = "#", ["_"] = "_", ["\\"] = "\n", ["|"] = "",
    };

    private static readonly HashSet<string> KeepArgument = ["text", "textbf", "textit", "textrm", "textsf", "texttt", "mathrm", "mathit",
        "mathsf", "mathtt", "emph", "operatorname", "overline", "underline", "boxed", "hbox", "fbox"];

    public static string ToText(string latex)
    {
        int i = 0;
        var sb = new StringBuilder();
        Nodes(latex, ref i, sb, stopAtBrace: false);
        return sb.ToString();
    }

    private static void Nodes(string s, ref int i, StringBuilder sb, bool stopAtBrace)
    {
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '}' && stopAtBrace) { i++; return; }
            if (c == '}') { i++; continue; }
            Node(s, ref i, sb);
        }
    }

    private static void Node(string s, ref int i, StringBuilder sb)
    {
        char c = s[i];
        if (c == '{') { i++; Nodes(s, ref i, sb, stopAtBrace: true); return; }
        if (c == '~') { sb.Append('\u00a0'); i++; return; }
        if (c == '&') { sb.Append("   "); i++; return; }
        if (c == '\\') { Macro(s, ref i, sb); return; }
        sb.Append(c);
        i++;
    }

    private static void Macro(string s, ref int i, StringBuilder sb)
    {
        i++; // backslash
        if (i >= s.Length) return;
        string name;
        if (char.IsAsciiLetter(s[i]))
        {
            int start = i;
            while (i < s.Length && char.IsAsciiLetter(s[i])) i++;
            name = s[start..i];
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        }
        else
        {
            name = s[i].ToString();
            i++;
            sb.Append(Punct.TryGetValue(name, out var p) ? p : "");
            return;
        }
        switch (name)
        {
            case "begin":
                Environment(s, ref i, sb);
                return;
            case "frac" or "dfrac" or "tfrac":
                sb.Append(Arg(s, ref i)).Append('/').Append(Arg(s, ref i));
                return;
            case "sqrt":
                SkipSpace(s, ref i);
                if (i < s.Length && s[i] == '[')
                {
                    int close = s.IndexOf(']', i);
                    i = close < 0 ? s.Length : close + 1;
                }
                sb.Append("√(").Append(Arg(s, ref i)).Append(')');
                return;
            case "mbox":
                Arg(s, ref i);
                return;
            case "mathbf":
                foreach (char ch in Arg(s, ref i)) sb.Append(Bold(ch));
                return;
        }
        if (KeepArgument.Contains(name)) { sb.Append(Arg(s, ref i)); return; }
        if (Symbols.TryGetValue(name, out var sym)) { sb.Append(sym); return; }
        // \left, \right, \displaystyle and unknown macros produce nothing; following groups are ordinary text.
    }

    /// <summary>
    /// \begin{env}…\end{env}: pmatrix, bmatrix and array become "[ a b; c d ]" (cells joined by a space, rows by "; "),
    /// matrix and cases their rows on lines; any other environment its content as text.
    /// </summary>
    private static void Environment(string s, ref int i, StringBuilder sb)
    {
        var env = Arg(s, ref i);
        var end = "\\end{" + env + "}";
        int stop = s.IndexOf(end, i, StringComparison.Ordinal);
        var body = stop < 0 ? s[i..] : s[i..stop];
        i = stop < 0 ? s.Length : stop + end.Length;
        if (env == "array") { int j = 0; Arg(body, ref j); body = body[j..]; }
        string Rows(string sep) => string.Join(sep, body.Split("\\\\").Select(row => string.Join(" ", row.Split('&').Select(c => ToText(c).Trim()))));
        switch (env)
        {
            case "pmatrix" or "bmatrix" or "array": sb.Append("[ ").Append(Rows("; ")).Append(" ]"); break;
            case "matrix" or "cases": sb.Append(Rows("\n")); break;
            default: sb.Append(ToText(body)); break;
        }
    }

    private static void SkipSpace(string s, ref int i)
    {
        while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
    }

    private static string Arg(string s, ref int i)
    {
        SkipSpace(s, ref i);
        if (i >= s.Length) return "";
        var sb = new StringBuilder();
        if (s[i] == '{') { i++; Nodes(s, ref i, sb, stopAtBrace: true); }
        else Node(s, ref i, sb);
        return sb.ToString();
    }

    private static string Bold(char ch) => ch switch
    {
        >= 'A' and <= 'Z' => char.ConvertFromUtf32(0x1D400 + ch - 'A'),
        >= 'a' and <= 'z' => char.ConvertFromUtf32(0x1D41A + ch - 'a'),
        >= '0' and <= '9' => char.ConvertFromUtf32(0x1D7CE + ch - '0'),
        _ => ch.ToString(),
    };
}

using System.Numerics;

namespace EmaPg.Rewards.Math;

/// <summary>
/// A number during evaluation: an exact rational while only integers, +, −, ×, ÷, integer powers and
/// perfect-square roots are involved (sympy keeps these exact), otherwise a double (decimal literals are
/// sympy Floats; π and irrational roots are evaluated numerically).
/// </summary>
internal readonly record struct Num(BigInteger P, BigInteger Q, double D, bool Exact)
{
    public static Num Rational(BigInteger p, BigInteger q)
    {
        if (q.IsZero) return Float(double.NaN);
        if (q.Sign < 0) { p = -p; q = -q; }
        var g = BigInteger.GreatestCommonDivisor(p, q);
        if (!g.IsOne && !g.IsZero) { p /= g; q /= g; }
        return new Num(p, q, 0, true);
    }

    public static Num Float(double d) => new(0, 1, d, false);
    public double Value => Exact ? (double)P / (double)Q : D;
    public bool IsInteger => Exact && Q.IsOne;

    public static Num operator +(Num a, Num b) => a.Exact && b.Exact ? Rational(a.P * b.Q + b.P * a.Q, a.Q * b.Q) : Float(a.Value + b.Value);
    public static Num operator -(Num a) => a.Exact ? new Num(-a.P, a.Q, 0, true) : Float(-a.D);
    public static Num operator -(Num a, Num b) => a + -b;
    public static Num operator *(Num a, Num b) => a.Exact && b.Exact ? Rational(a.P * b.P, a.Q * b.Q) : Float(a.Value * b.Value);
    public static Num operator /(Num a, Num b) => a.Exact && b.Exact ? Rational(a.P * b.Q, a.Q * b.P) : Float(a.Value / b.Value);

    public static Num Pow(Num a, Num b)
    {
        if (a.Exact && b.IsInteger && BigInteger.Abs(b.P) <= 4096)
        {
            int n = (int)b.P;
            var (p, q) = n >= 0 ? (a.P, a.Q) : (a.Q, a.P);
            if (p.IsZero && n < 0) return Float(double.NaN);
            n = System.Math.Abs(n);
            return Rational(BigInteger.Pow(p, n), BigInteger.Pow(q, n));
        }
        return Float(System.Math.Pow(a.Value, b.Value));
    }

    public static Num Sqrt(Num a)
    {
        if (a.Exact && a.P.Sign >= 0 && IsSquare(a.P, out var rp) && IsSquare(a.Q, out var rq)) return Rational(rp, rq);
        return Float(System.Math.Sqrt(a.Value));
    }

    private static bool IsSquare(BigInteger n, out BigInteger root)
    {
        root = n.IsZero ? 0 : (BigInteger)System.Math.Round(System.Math.Sqrt((double)n));
        for (var r = BigInteger.Max(root - 2, 0); r <= root + 2; r++)
            if (r * r == n) { root = r; return true; }
        return false;
    }
}

/// <summary>
/// Parses what the reference hands to sympy's parse_expr (standard transformations + implicit multiplication
/// and application, ^ as power) for the subset answers use, and evaluates it with symbols bound to values.
/// Names split into one symbol per letter (sympy's split_symbols) unless they contain '_' or are known.
/// </summary>
internal sealed class ExprParser
{
    private abstract record Node;
    private sealed record Lit(Num Value) : Node;
    private sealed record Sym(string Name) : Node;
    private sealed record Bin(char Op, Node L, Node R) : Node;
    private sealed record Neg(Node X) : Node;
    private sealed record Call(string Fn, Node X) : Node;

    private readonly List<string> _tokens;
    private int _pos;

    private readonly bool _decimalsExact;

    private ExprParser(List<string> tokens, bool decimalsExact) { _tokens = tokens; _decimalsExact = decimalsExact; }

    /// <summary>A compiled expression: its free symbols and an evaluator; null when sympy would fail to parse it or we cannot evaluate it.</summary>
    /// <param name="decimalsExact">Decimal literals as their exact rational value instead of doubles (sympy Floats).</param>
    public static (IReadOnlyList<string> Symbols, Func<IReadOnlyDictionary<string, Num>, Num> Eval)? Compile(string expr, bool decimalsExact)
    {
        var tokens = Tokenize(expr.Replace("^", "**"));
        if (tokens is null) return null;
        var p = new ExprParser(tokens, decimalsExact);
        Node? root;
        try { root = p.Expr(); } catch (FormatException) { return null; }
        if (p._pos != tokens.Count) return null;
        var syms = new SortedSet<string>(StringComparer.Ordinal);
        Collect(root, syms);
        return ([.. syms], env => Eval(root, env));
    }

    private static void Collect(Node n, SortedSet<string> syms)
    {
        switch (n)
        {
            case Sym s: syms.Add(s.Name); break;
            case Bin b: Collect(b.L, syms); Collect(b.R, syms); break;
            case Neg g: Collect(g.X, syms); break;
            case Call c: Collect(c.X, syms); break;
        }
    }

    private static Num Eval(Node n, IReadOnlyDictionary<string, Num> env) => n switch
    {
        Lit l => l.Value,
        Sym s => env[s.Name],
        Neg g => -Eval(g.X, env),
        Bin { Op: '+' } b => Eval(b.L, env) + Eval(b.R, env),
        Bin { Op: '-' } b => Eval(b.L, env) - Eval(b.R, env),
        Bin { Op: '*' } b => Eval(b.L, env) * Eval(b.R, env),
        Bin { Op: '/' } b => Eval(b.L, env) / Eval(b.R, env),
        Bin { Op: '^' } b => Num.Pow(Eval(b.L, env), Eval(b.R, env)),
        Call { Fn: "sqrt" } c => Num.Sqrt(Eval(c.X, env)),
        Call { Fn: "exp" } c => Num.Float(System.Math.Exp(Eval(c.X, env).Value)),
        Call { Fn: "ln" or "log" } c => Ln(Eval(c.X, env)),
        Call { Fn: "sin" } c => Num.Float(System.Math.Sin(Eval(c.X, env).Value)),
        Call { Fn: "cos" } c => Num.Float(System.Math.Cos(Eval(c.X, env).Value)),
        Call { Fn: "tan" } c => Num.Float(System.Math.Tan(Eval(c.X, env).Value)),
        _ => throw new InvalidOperationException($"unknown node {n}"),
    };

    private static Num Ln(Num x) => x.Exact && x.P.IsOne && x.Q.IsOne ? Num.Rational(0, 1) : Num.Float(System.Math.Log(x.Value));

    private static readonly HashSet<string> Functions = ["sqrt", "exp", "ln", "log", "sin", "cos", "tan"];
    // Greek names sympy keeps whole (split_symbols never splits a Greek letter's name).
    private static readonly HashSet<string> Whole = ["mu", "nu", "xi", "eta", "rho", "tau", "chi", "psi", "phi", "beta", "zeta", "iota",
        "alpha", "gamma", "delta", "theta", "kappa", "sigma", "omega", "lambda", "epsilon"];

    private static List<string>? Tokenize(string s)
    {
        var t = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])))
            {
                int st = i;
                while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                if (i < s.Length && s[i] == '.') { i++; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
                if (i + 1 < s.Length && (s[i] == 'e' || s[i] == 'E') && (char.IsAsciiDigit(s[i + 1]) ||
                    ((s[i + 1] == '+' || s[i + 1] == '-') && i + 2 < s.Length && char.IsAsciiDigit(s[i + 2]))))
                {
                    i += 2;
                    while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                }
                t.Add(s[st..i]);
                continue;
            }
            if (char.IsLetter(c) || c == '_')
            {
                int st = i;
                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                var name = s[st..i];
                if (Functions.Contains(name) || name is "pi" or "oo" || name.Contains('_') || Whole.Contains(name) || name.Length == 1) t.Add(name);
                else SplitName(name, t);
                continue;
            }
            if (c == '*' && i + 1 < s.Length && s[i + 1] == '*') { t.Add("**"); i += 2; continue; }
            if ("+-*/()".Contains(c)) { t.Add(c.ToString()); i++; continue; }
            return null; // ',', '!', '|', '=', '<', '[', unicode symbols: sympy raises or returns a non-expression
        }
        return t;
    }

    private string? Peek => _pos < _tokens.Count ? _tokens[_pos] : null;
    private string Next() => _pos < _tokens.Count ? _tokens[_pos++] : throw new FormatException("unexpected end");

    private Node Expr()
    {
        var n = Term();
        while (Peek is "+" or "-") { var op = Next()[0]; n = new Bin(op, n, Term()); }
        return n;
    }

    private Node Term()
    {
        var n = Unary();
        while (true)
        {
            if (Peek is "*" or "/") { var op = Next()[0]; n = new Bin(op, n, Unary()); continue; }
            if (StartsAtom(Peek)) { n = new Bin('*', n, Unary()); continue; } // implicit multiplication
            return n;
        }
    }

    private static bool StartsAtom(string? t) => t is not null && (t == "(" || char.IsLetterOrDigit(t[0]) || t[0] == '_' || t[0] == '.');

    private Node Unary()
    {
        if (Peek == "-") { Next(); return new Neg(Unary()); }
        if (Peek == "+") { Next(); return Unary(); }
        return Power();
    }

    private Node Power()
    {
        var b = Atom();
        if (Peek == "**") { Next(); return new Bin('^', b, Unary()); }
        return b;
    }

    private Node Atom()
    {
        var t = Next();
        if (t == "(")
        {
            var e = Expr();
            if (Next() != ")") throw new FormatException("unbalanced");
            return e;
        }
        if (char.IsAsciiDigit(t[0]) || t[0] == '.')
        {
            if (t.Contains('.') || t.Contains('e') || t.Contains('E'))
                return new Lit(_decimalsExact ? ExactDecimal(t) : Num.Float(double.Parse(t, System.Globalization.CultureInfo.InvariantCulture)));
            return new Lit(Num.Rational(BigInteger.Parse(t), 1));
        }
        if (Functions.Contains(t))
        {
            if (Peek != "(") throw new FormatException("function without argument");
            Next();
            var arg = Expr();
            if (Next() != ")") throw new FormatException("unbalanced");
            return new Call(t, arg);
        }
        if (t == "pi") return new Lit(Num.Float(System.Math.PI));
        if (t == "oo") throw new FormatException("infinity: sympy's oo − oo is nan, never 0");
        if (char.IsLetter(t[0]) || t[0] == '_') return new Sym(t);
        throw new FormatException($"unexpected token {t}");
    }

    private static Num ExactDecimal(string t)
    {
        int e = t.IndexOfAny(['e', 'E']);
        int exp = e < 0 ? 0 : int.Parse(t[(e + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        var mantissa = e < 0 ? t : t[..e];
        int dot = mantissa.IndexOf('.');
        if (dot >= 0) { exp -= mantissa.Length - dot - 1; mantissa = mantissa.Remove(dot, 1); }
        var digits = BigInteger.Parse(mantissa.Length == 0 ? "0" : mantissa);
        return exp >= 0 ? Num.Rational(digits * BigInteger.Pow(10, exp), 1) : Num.Rational(digits, BigInteger.Pow(10, -exp));
    }

    /// <summary>split_symbols: "xy2" → x, y, 2 as separate tokens, so implicit multiplication and powers bind as in sympy (x y**2).</summary>
    private static void SplitName(string name, List<string> tokens)
    {
        int i = 0;
        while (i < name.Length)
        {
            int st = i;
            if (char.IsAsciiDigit(name[i])) while (i < name.Length && char.IsAsciiDigit(name[i])) i++;
            else i++;
            tokens.Add(name[st..i]);
        }
    }
}

using System.Globalization;
using System.Text;
using EmaPg.Common;
using EmaPg.Data;
using EmaPg.Tokenization;

namespace EmaPg.Tasks;

/// <summary>
/// A generated grade-school word problem: the question, a worked solution in words ending in \boxed{answer}, the same
/// steps as bare equations (<see cref="TerseSolution"/>, e.g. "12 + 5 = 17. 17 ÷ 2 = … The answer is \boxed{N}."), the
/// answer and the difficulty (number of steps).
/// </summary>
public sealed record WordProblem(string Question, string Solution, long Answer, int Steps)
{
    public string TerseSolution { get; init; } = Solution;
}

/// <summary>Knobs of <see cref="WordProblems"/>; all of them enter its fingerprint.</summary>
public sealed record WordProblemsConfig
{
    /// <summary>Difficulty: a problem chains between MinSteps and MaxSteps arithmetic steps.</summary>
    public int MinSteps { get; init; } = 1;
    public int MaxSteps { get; init; } = 3;
    /// <summary>Starting quantities and step operands are drawn from [1, MaxOperand].</summary>
    public int MaxOperand { get; init; } = 20;
    public int TestSize { get; init; } = 256;
    public int TestSeed { get; init; } = 20261126;

    public WordProblemsConfig Validate()
    {
        Check.Range("word problem min steps", MinSteps, 1, 8);
        Check.Range("word problem max steps", MaxSteps, MinSteps, 8);
        Check.Range("word problem max operand", MaxOperand, 2, 1000);
        Check.Range("word problem test size", TestSize, 1, 100_000);
        return this;
    }
}

/// <summary>
/// Grade-school word problems that no model has memorised: a person starts with some items and a chain of events adds,
/// removes, multiplies or shares them (divisions are always exact), e.g. "Mia has 12 shells. She finds 5 more. She then
/// gives away half of them. How many shells does Mia have now?". The worked solution states each step as an equation and
/// ends with "The answer is \boxed{N}." — the format the `math` reward grades. The test split is drawn from a fixed seed
/// and removed from the training stream by exact question match; difficulty is the number of steps.
/// </summary>
public sealed class WordProblems
{
    private static readonly string[] Names = ["Mia", "Noah", "Ava", "Liam", "Zoe", "Omar", "Lena", "Ravi", "Iris", "Hugo", "Nina", "Theo", "Sara", "Ivan", "Maya", "Kofi"];
    private static readonly string[] Items = ["apples", "marbles", "stickers", "shells", "books", "coins", "pencils", "cookies", "stamps", "cards", "beads", "eggs"];
    private static readonly bool[] Female = [true, false, true, false, true, false, true, false, true, false, true, false, true, false, true, false];

    private readonly HashSet<string> _testQuestions;

    public WordProblems(WordProblemsConfig? config = null)
    {
        Config = (config ?? new WordProblemsConfig()).Validate();
        var rng = new Random(Config.TestSeed);
        var test = new List<WordProblem>();
        _testQuestions = [];
        for (int tries = 0; test.Count < Config.TestSize; tries++)
        {
            if (tries > Config.TestSize * 100) throw new UserError($"word problem settings allow fewer than {Config.TestSize} distinct test problems.");
            var p = Draw(rng);
            if (_testQuestions.Add(p.Question)) test.Add(p);
        }
        TestSplit = test;
    }

    public WordProblemsConfig Config { get; }
    public IReadOnlyList<WordProblem> TestSplit { get; }
    public string Fingerprint => $"word-problems/v1/{Config.MinSteps}-{Config.MaxSteps}/{Config.MaxOperand}/{Config.TestSize}/{Config.TestSeed}";

    /// <summary>The problem as a dataset row: the question as one user message, its answer as the ground truth, the worked solution for SFT.</summary>
    /// <param name="terse">use <see cref="WordProblem.TerseSolution"/> (about half the tokens) as the reference response</param>
    public static PromptExample ToExample(WordProblem p, string origin, bool terse = false) => new()
    {
        Messages = [new ChatMessage("user", p.Question)],
        GroundTruths = [p.Answer.ToString(CultureInfo.InvariantCulture)],
        Solution = terse ? p.TerseSolution : p.Solution,
        DataSource = "word-problems",
        Origin = origin,
    };

    /// <summary>A training problem, never one of the test split; deterministic given <paramref name="rng"/>.</summary>
    public WordProblem SampleTrain(Random rng)
    {
        while (true)
        {
            var p = Draw(rng);
            if (!_testQuestions.Contains(p.Question)) return p;
        }
    }

    private WordProblem Draw(Random rng)
    {
        int who = rng.Next(Names.Length);
        string name = Names[who], pronoun = Female[who] ? "She" : "He", item = Items[rng.Next(Items.Length)];
        int steps = rng.Next(Config.MinSteps, Config.MaxSteps + 1);
        long n = rng.Next(2, Config.MaxOperand + 1);
        var q = new StringBuilder($"{name} has {n} {item}.");
        var s = new StringBuilder($"{name} starts with {n} {item}.");
        var terse = new StringBuilder();
        for (int i = 0; i < steps; i++)
        {
            string then = i == 0 ? "" : "then ";
            long before = n;
            switch (rng.Next(n >= 2 ? 4 : 2))
            {
                case 0:
                {
                    int k = rng.Next(1, Config.MaxOperand + 1);
                    n = before + k;
                    q.Append($" {pronoun} {then}{Pick(rng, "buys", "finds", "is given", "collects")} {k} more.");
                    s.Append($" After getting {k} more, {Lower(pronoun)} has {Eq(before, '+', k, n)} {item}.");
                    terse.Append($"{Eq(before, '+', k, n)}. ");
                    break;
                }
                case 1:
                {
                    int k = rng.Next(2, 4);
                    n = before * k;
                    string times = k == 2 ? "doubles" : "triples";
                    q.Append($" {pronoun} {then}{times} the number of {item}.");
                    s.Append($" {Cap(times)} means {Eq(before, '×', k, n)} {item}.");
                    terse.Append($"{Eq(before, '×', k, n)}. ");
                    break;
                }
                case 2:
                {
                    long k = rng.NextInt64(1, before);
                    n = before - k;
                    q.Append($" {pronoun} {then}{Pick(rng, "gives away", "loses", "sells", "uses")} {k} of them.");
                    s.Append($" After {k} are gone, {Lower(pronoun)} has {Eq(before, '-', k, n)} {item}.");
                    terse.Append($"{Eq(before, '-', k, n)}. ");
                    break;
                }
                default:
                {
                    var divisors = Enumerable.Range(2, 3).Where(d => before % d == 0).ToArray();
                    if (divisors.Length == 0) goto case 0;
                    int d = divisors[rng.Next(divisors.Length)];
                    n = before / d;
                    string part = d switch { 2 => "half", 3 => "a third", _ => "a quarter" };
                    q.Append($" {pronoun} {then}keeps only {part} of them.");
                    s.Append($" Keeping {part} leaves {Eq(before, '÷', d, n)} {item}.");
                    terse.Append($"{Eq(before, '÷', d, n)}. ");
                    break;
                }
            }
        }
        q.Append($" How many {item} does {name} have now?");
        s.Append($" The answer is \\boxed{{{n.ToString(CultureInfo.InvariantCulture)}}}.");
        terse.Append($"The answer is \\boxed{{{n.ToString(CultureInfo.InvariantCulture)}}}.");
        return new WordProblem(q.ToString(), s.ToString(), n, steps) { TerseSolution = terse.ToString() };
    }

    private static string Eq(long a, char op, long b, long result) =>
        $"{a.ToString(CultureInfo.InvariantCulture)} {op} {b.ToString(CultureInfo.InvariantCulture)} = {result.ToString(CultureInfo.InvariantCulture)}";

    private static string Pick(Random rng, params string[] words) => words[rng.Next(words.Length)];
    private static string Lower(string s) => char.ToLowerInvariant(s[0]) + s[1..];
    private static string Cap(string s) => char.ToUpperInvariant(s[0]) + s[1..];
}

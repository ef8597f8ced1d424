using System.Text.RegularExpressions;
using EmaPg.Tasks;

namespace EmaPg.Tests.Tasks;

public class WordProblemsTests
{
    /// <summary>Every equation in a worked solution is true, the chain ends at the boxed answer, and the step count is the difficulty.</summary>
    [Fact]
    public void SolutionsAreCorrectChainsEndingInTheBoxedAnswer()
    {
        var wp = new WordProblems(new WordProblemsConfig { MinSteps = 1, MaxSteps = 4, TestSize = 50 });
        var rng = new Random(1);
        var eq = new Regex(@"(\d+) ([+×÷-]) (\d+) = (\d+)");
        foreach (var p in wp.TestSplit.Concat(Enumerable.Range(0, 500).Select(_ => wp.SampleTrain(rng))))
        {
            var matches = eq.Matches(p.Solution);
            Assert.Equal(p.Steps, matches.Count);
            long current = long.Parse(Regex.Match(p.Solution, @"starts with (\d+)").Groups[1].Value);
            foreach (Match m in matches)
            {
                long a = long.Parse(m.Groups[1].Value), b = long.Parse(m.Groups[3].Value), r = long.Parse(m.Groups[4].Value);
                Assert.Equal(current, a);   // each step continues from the previous result
                long expected = m.Groups[2].Value switch { "+" => a + b, "-" => a - b, "×" => a * b, "÷" => a / b, _ => throw new InvalidOperationException() };
                if (m.Groups[2].Value == "÷") Assert.Equal(0, a % b);
                Assert.Equal(expected, r);
                Assert.True(r >= 0);
                current = r;
            }
            Assert.Equal(p.Answer, current);
            Assert.EndsWith($"The answer is \\boxed{{{p.Answer}}}.", p.Solution);
            // The terse solution is the same chain of equations, and nothing else but the boxed answer.
            Assert.Equal(matches.Select(m => m.Value), eq.Matches(p.TerseSolution).Select(m => m.Value));
            Assert.Equal(string.Concat(matches.Select(m => m.Value + ". ")) + $"The answer is \\boxed{{{p.Answer}}}.", p.TerseSolution);
            Assert.InRange(p.Steps, 1, 4);
        }
    }

    [Fact]
    public void TheTestSplitIsFixedDistinctAndNeverDrawnForTraining()
    {
        var a = new WordProblems();
        var b = new WordProblems();
        Assert.Equal(a.TestSplit, b.TestSplit);
        Assert.Equal(a.TestSplit.Count, a.TestSplit.Select(p => p.Question).Distinct().Count());
        var test = a.TestSplit.Select(p => p.Question).ToHashSet();
        var rng = new Random(7);
        var drawn = Enumerable.Range(0, 3000).Select(_ => a.SampleTrain(rng).Question).ToList();
        Assert.DoesNotContain(drawn, test.Contains);
        Assert.True(drawn.Distinct().Count() > 2500, "the training stream is varied");
        Assert.Equal(new[] { 1, 2, 3 }, a.TestSplit.Select(p => p.Steps).Distinct().Order());
    }
}

using System.Text.Json.Nodes;
using EmaPg.Data;
using EmaPg.Rewards;

namespace EmaPg.Tests.Rewards;

/// <summary>
/// The math reward against DeepScaleR's grader itself: Fixtures/rewards/math_grader.jsonl was produced by
/// tools/goldens/math_grader_goldens.py running the reference (sympy + pylatexenc). Every case must agree except
/// the documented known disagreements below, which are listed, counted and must keep disagreeing (so the list
/// cannot hide a fixed or a newly broken case).
/// </summary>
public class MathGraderFixtureTests
{
    internal static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "rewards", "math_grader.jsonl");

    /// <summary>Cases (by line number, 1-based) where our grader is known to differ from the reference, and why.</summary>
    internal static readonly Dictionary<int, string> KnownDisagreements = new()
    {
    };

    internal static List<(int Line, string Response, IReadOnlyList<string> Truths, double Score)> Cases() =>
        [.. File.ReadLines(FixturePath).Select((l, i) =>
        {
            var o = JsonNode.Parse(l)!.AsObject();
            return (i + 1, o["response"]!.GetValue<string>(), GroundTruths.FromJson(o["ground_truth"], $"line {i + 1}"), o["score"]!.GetValue<double>());
        })];

    [Fact]
    public void Agrees_with_the_reference_grader_on_every_fixture_case_but_the_known_list()
    {
        var cases = Cases();
        Assert.True(cases.Count >= 200, $"only {cases.Count} cases");
        var reward = new MathReward();
        var disagree = new List<string>();
        var stillKnown = new List<int>();
        foreach (var (line, response, truths, score) in cases)
        {
            double ours = reward.Score(response, new PromptExample { GroundTruths = truths });
            bool agrees = ours == score;
            if (KnownDisagreements.ContainsKey(line)) { if (agrees) stillKnown.Add(line); continue; }
            if (!agrees) disagree.Add($"line {line}: reference {score}, ours {ours}: {response} | {string.Join(" ; ", truths)}");
        }
        Assert.True(disagree.Count == 0, $"{disagree.Count} disagreements:\n" + string.Join("\n", disagree));
        Assert.True(stillKnown.Count == 0, $"known disagreements that now agree (remove them from the list): {string.Join(", ", stillKnown)}");
    }

    [Fact]
    public void Fixture_holds_both_correct_and_incorrect_cases()
    {
        var cases = Cases();
        Assert.InRange(cases.Count(c => c.Score == 1.0), 50, cases.Count - 50);
    }
}

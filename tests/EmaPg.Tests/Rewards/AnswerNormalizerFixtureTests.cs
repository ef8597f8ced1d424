using System.Text.Json.Nodes;
using EmaPg.Rewards.Math;

namespace EmaPg.Tests.Rewards;

/// <summary>
/// The two string normalisations against the reference's own outputs (mathd_normalize_answer and _normalize of
/// DeepScaleR's grader, written by tools/goldens/math_grader_goldens.py --normalize-out) for every answer string
/// in the grader fixture, so the string pipeline is checked on its own, not only through final scores.
/// </summary>
public class AnswerNormalizerFixtureTests
{
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "rewards", "math_normalize.jsonl");

    /// <summary>Inputs whose normalised string differs from the reference's, and why (none of them changes a grade).</summary>
    internal static readonly Dictionary<string, string> KnownNormalizeDifferences = new()
    {
    };

    [Fact]
    public void Both_normalisations_match_the_reference_on_every_answer_string()
    {
        var lines = File.ReadLines(FixturePath).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.True(lines.Count >= 300, $"only {lines.Count} strings");
        var diffs = new List<string>();
        foreach (var o in lines)
        {
            var input = o["input"]!.GetValue<string>();
            var mathd = AnswerNormalizer.Mathd(input);
            if (mathd != o["mathd"]!.GetValue<string>()) diffs.Add($"mathd  {input} → ours '{mathd}', reference '{o["mathd"]}'");
            if (KnownNormalizeDifferences.ContainsKey(input)) continue;
            var norm = AnswerNormalizer.ForSymbolic(input);
            if (norm != o["normalize"]!.GetValue<string>()) diffs.Add($"normalize  {input} → ours '{norm}', reference '{o["normalize"]}'");
        }
        Assert.True(diffs.Count == 0, $"{diffs.Count} differences:\n" + string.Join("\n", diffs));
    }
}

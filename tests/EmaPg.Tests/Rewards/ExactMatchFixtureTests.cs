using System.Text.Json.Nodes;
using EmaPg.Data;
using EmaPg.Rewards;

namespace EmaPg.Tests.Rewards;

/// <summary>The exact-match reward against verl's qa_em.em_check itself (Fixtures/rewards/exact_match.jsonl, by tools/goldens/exact_match_goldens.py).</summary>
public class ExactMatchFixtureTests
{
    [Fact]
    public void Agrees_with_verl_em_check_on_every_case()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "rewards", "exact_match.jsonl");
        var reward = new ExactMatchReward();
        var rows = File.ReadLines(path).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.True(rows.Count >= 50);
        var diffs = new List<string>();
        foreach (var o in rows)
        {
            var response = o["response"]!.GetValue<string>();
            var golds = GroundTruths.FromJson(o["golden_answers"], "fixture");
            double want = o["score"]!.GetValue<double>(), got = reward.Score(response, new PromptExample { GroundTruths = golds });
            if (got != want) diffs.Add($"{response} | {string.Join(" ; ", golds)}: reference {want}, ours {got}");
        }
        Assert.True(diffs.Count == 0, $"{diffs.Count} disagreements:\n" + string.Join("\n", diffs));
    }
}

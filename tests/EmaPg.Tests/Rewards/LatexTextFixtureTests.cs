using System.Text.Json.Nodes;
using EmaPg.Rewards.Math;

namespace EmaPg.Tests.Rewards;

/// <summary>LaTeX → text against pylatexenc 2.10's LatexNodes2Text itself (Fixtures/rewards/latex_text.jsonl, by tools/goldens/math_grader_goldens.py --latex-out).</summary>
public class LatexTextFixtureTests
{
    [Fact]
    public void Matches_pylatexenc_on_every_snippet()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "rewards", "latex_text.jsonl");
        var rows = File.ReadLines(path).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.True(rows.Count >= 90, $"only {rows.Count} snippets");
        var diffs = rows.Select(o => (Latex: o["latex"]!.GetValue<string>(), Want: o["text"]!.GetValue<string>()))
            .Select(r => (r.Latex, r.Want, Got: LatexText.ToText(r.Latex)))
            .Where(r => r.Got != r.Want)
            .Select(r => $"{r.Latex} → ours '{r.Got}', pylatexenc '{r.Want}'").ToList();
        Assert.True(diffs.Count == 0, $"{diffs.Count} differences:\n" + string.Join("\n", diffs));
    }
}

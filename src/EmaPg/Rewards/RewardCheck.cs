using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Data;

namespace EmaPg.Rewards;

/// <summary>
/// Scores hand-written cases with a named reward (the `emapg reward` verb): each JSONL line is
/// <c>{"response": str, "ground_truth": str | number | [..]}</c> or with <c>"golden_answers": [..]</c> instead, and
/// optionally "data_source" and "extra_info". Every score goes through <see cref="SafeReward"/>, as in training.
/// </summary>
public static class RewardCheck
{
    public sealed record Result(IReadOnlyList<double> Scores, RewardReport Report);

    public static Result Run(string rewardName, string inputPath, RewardOptions options)
    {
        var reward = RewardRegistry.CreateSafe(rewardName, options);
        try
        {
            if (!File.Exists(inputPath)) throw new UserError($"--input '{inputPath}' does not exist.");
            var scores = new List<double>();
            foreach (var (ex, response) in ReadCases(inputPath)) scores.Add(reward.Score(response, ex));
            if (scores.Count == 0) throw new UserError($"--input '{inputPath}' holds no cases.");
            return new Result(scores, reward.Report());
        }
        finally { reward.Dispose(); }
    }

    private static IEnumerable<(PromptExample, string)> ReadCases(string path)
    {
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            var where = $"{path}:{line}";
            JsonObject o;
            try { o = JsonNode.Parse(text) as JsonObject ?? throw new UserError($"{where}: expected a JSON object."); }
            catch (JsonException e) { throw new UserError($"{where}: not valid JSON ({e.Message})."); }
            if (o["response"] is not JsonValue r || r.GetValueKind() != JsonValueKind.String)
                throw new UserError($"{where}: \"response\" must be a string.");
            var truthNode = o.ContainsKey("ground_truth") ? o["ground_truth"] : o.ContainsKey("golden_answers") ? o["golden_answers"]
                : throw new UserError($"{where}: needs \"ground_truth\" or \"golden_answers\".");
            var ex = new PromptExample
            {
                GroundTruths = GroundTruths.FromJson(truthNode, where),
                DataSource = o["data_source"] is JsonValue ds ? ds.ToString() : null,
                ExtraInfo = o["extra_info"]?.DeepClone(),
                Origin = where,
            };
            yield return (ex, r.GetValue<string>());
        }
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;

namespace EmaPg.Data;

/// <summary>Ground truths as they appear in data files: a string, a number, or a list of them (verl allows all three).</summary>
public static class GroundTruths
{
    /// <summary>The ground truths of a JSON value; numbers keep their written form ("2.5"), null gives none.</summary>
    public static IReadOnlyList<string> FromJson(JsonNode? node, string where) => node switch
    {
        null => [],
        JsonArray a => [.. a.SelectMany(n => FromJson(n, where))],
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => [v.ToJsonString()],
        _ => throw new Common.UserError($"{where}: a ground truth must be a string, a number or a list of them, got {node.ToJsonString()}."),
    };
}

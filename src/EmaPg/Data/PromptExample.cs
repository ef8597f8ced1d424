using System.Text.Json.Nodes;
using EmaPg.Tokenization;

namespace EmaPg.Data;

/// <summary>
/// One dataset example: the prompt as chat messages (verl's `prompt` list, or a plain question wrapped as one
/// user message) and the text rendered from them; the ground truth(s) the reward checks; verl's
/// data_source and extra_info passed through to rewards. <see cref="Origin"/> names the file and line/row.
/// </summary>
public sealed record PromptExample
{
    public IReadOnlyList<ChatMessage> Messages { get; init; } = [];
    public required IReadOnlyList<string> GroundTruths { get; init; }
    public string? DataSource { get; init; }
    public JsonNode? ExtraInfo { get; init; }
    public string Origin { get; init; } = "";
    /// <summary>The prompt text given to the tokenizer: chat-templated messages, or their plain text with --no-chat-template.</summary>
    public string PromptText { get; init; } = "";
    /// <summary>Length of <see cref="PromptText"/> in tokens, as counted when the dataset was loaded (0 when not counted).</summary>
    public int PromptTokens { get; init; }
    /// <summary>A reference response for supervised fine-tuning (the row's solution field, or a trailing assistant message); null when absent.</summary>
    public string? Solution { get; init; }

    /// <summary>An example that only carries ground truths (rewards checked by hand, tests).</summary>
    public static PromptExample ForAnswers(params string[] truths) => new() { GroundTruths = truths };
}

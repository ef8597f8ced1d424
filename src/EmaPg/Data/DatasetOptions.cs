using EmaPg.Common;
using EmaPg.Tokenization;

namespace EmaPg.Data;

/// <summary>What to do with a prompt longer than <see cref="DatasetOptions.MaxPromptTokens"/>.</summary>
public enum OverLengthPolicy { Skip, Error }

/// <summary>
/// How rows map to examples. Field names may be dotted paths into nested objects (verl's reward_model.ground_truth).
/// Null field names mean: prompt = "prompt" else "question"; ground truth = "reward_model.ground_truth", else
/// "answer", else "answers", else "golden_answers" (the first one the row has).
/// </summary>
public sealed record DatasetOptions
{
    /// <summary>DeepScaleR's instruction, appended to the last user message when <see cref="InstructionSuffix"/> is set to it.</summary>
    public const string DeepScaleRInstruction = "Let's think step by step and output the final answer within \\boxed{}.";

    public static readonly string[] DefaultPromptFields = ["prompt", "question", "messages"];
    public static readonly string[] DefaultSolutionFields = ["solution", "response"];
    public static readonly string[] DefaultAnswerFields = ["reward_model.ground_truth", "answer", "answers", "golden_answers"];

    public string? PromptField { get; init; }
    public string? AnswerField { get; init; }
    /// <summary>The reference response for SFT; null = "solution", else "response", else a trailing assistant message of the prompt.</summary>
    public string? SolutionField { get; init; }
    public string DataSourceField { get; init; } = "data_source";
    public string ExtraInfoField { get; init; } = "extra_info";
    /// <summary>Appended (after one space) to the last user message; null for none.</summary>
    public string? InstructionSuffix { get; init; }
    /// <summary>Use the messages' text as is (joined by newlines) instead of the model's chat template.</summary>
    public bool NoChatTemplate { get; init; }
    /// <summary>Longest prompt in tokens; 0 for no limit.</summary>
    public int MaxPromptTokens { get; init; }
    public OverLengthPolicy OverLength { get; init; } = OverLengthPolicy.Skip;

    public DatasetOptions Validated()
    {
        Check.Range("--max-prompt-length", MaxPromptTokens, 0, int.MaxValue);
        foreach (var (name, v) in new[] { ("--prompt-field", PromptField), ("--answer-field", AnswerField), ("--solution-field", SolutionField), ("--data-source-field", DataSourceField), ("--extra-info-field", ExtraInfoField) })
            if (v is not null && (v.Length == 0 || v.Split('.').Any(p => p.Length == 0)))
                throw new UserError($"{name} must be a field name or a dotted path like reward_model.ground_truth, got '{v}'.");
        return this;
    }
}

/// <summary>
/// Turns an example's messages into prompt text and counts its tokens. The chat template and the token counter
/// come from the model's tokenizer (wired by the caller); <see cref="Plain"/> needs neither.
/// </summary>
public sealed record PromptRenderer(Func<IReadOnlyList<ChatMessage>, string> ChatTemplate, Func<string, int> CountTokens)
{
    /// <summary>No chat template and no tokenizer: messages' content joined by newlines, length counted in characters.</summary>
    public static PromptRenderer Plain { get; } = new(m => JoinContents(m), s => s.Length);

    public static string JoinContents(IReadOnlyList<ChatMessage> messages) => string.Join("\n", messages.Select(m => m.Content));
}

/// <summary>What loading a split did: rows read and every row not turned into an example, by reason.</summary>
public sealed record DatasetReport(string Path, int Rows, int Loaded, int SkippedTooLong, int BlankLines, int LongestPromptTokens)
{
    public override string ToString() =>
        $"{System.IO.Path.GetFileName(Path)}: {Rows} rows, {Loaded} examples, {SkippedTooLong} skipped as longer than the prompt limit, {BlankLines} blank lines; longest prompt {LongestPromptTokens} tokens";
}

/// <summary>A loaded split: its examples (prompts rendered and counted) and the report of what was skipped.</summary>
public sealed record Dataset(IReadOnlyList<PromptExample> Examples, DatasetReport Report);

using EmaPg.Data;

namespace EmaPg.Tasks;

/// <summary>
/// One task instance. <see cref="Prompt"/> is what the policy is conditioned on (for a dataset, the rendered prompt
/// text), <see cref="Answer"/> the final answer the reward checks, <see cref="Solution"/> the reference response text
/// (without EOS) used by the supervised cold start; it may contain worked steps before the answer, and is empty when
/// the data has none.
/// </summary>
public sealed record Problem(string Prompt, string Answer, string Solution)
{
    /// <summary>The dataset row behind the problem (all ground truths, data source, extra info for rewards); null for generated tasks.</summary>
    public PromptExample? Example { get; init; }
}

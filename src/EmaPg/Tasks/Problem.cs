namespace EmaPg.Tasks;

/// <summary>
/// One task instance. <see cref="Prompt"/> is what the policy is conditioned on (without BOS),
/// <see cref="Answer"/> the final answer the reward checks, <see cref="Solution"/> the reference
/// response text (without EOS) used by the supervised cold start; it may contain worked steps
/// before the answer.
/// </summary>
public sealed record Problem(string Prompt, string Answer, string Solution);

using EmaPg.Common;

namespace EmaPg.Rewards;

/// <summary>A named reward: what it checks and how to make one.</summary>
public sealed class RewardSpec
{
    public required string Name { get; init; }
    public required string Description { get; init; }
    /// <summary>True when the reward needs an external command (<see cref="RewardOptions.Command"/>).</summary>
    public bool NeedsCommand { get; init; }
    public required Func<RewardOptions, IReward> Create { get; init; }
}

/// <summary>Options some rewards need: the external command and the per-call timeout applied by <see cref="SafeReward"/>.</summary>
public sealed record RewardOptions
{
    public string? Command { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>Every reward by name, so a reward name means the same function in the trainer, eval and `emapg reward`.</summary>
public static class RewardRegistry
{
    public static IReadOnlyList<RewardSpec> All { get; } =
    [
        new() { Name = "math", Description = "DeepScaleR/verl math grader: last \\boxed{} vs ground truth(s), normalised and symbolically compared", Create = _ => new MathReward() },
        new() { Name = "exact-match", Description = "SQuAD-normalised exact match of the last <answer>…</answer> (or the response) against any gold answer", Create = _ => new ExactMatchReward() },
        new() { Name = "arithmetic", Description = "the embedded arithmetic task's reward: exactly the answer's digits", Create = _ => new ArithmeticReward() },
        new()
        {
            Name = "external", NeedsCommand = true,
            Description = "a long-lived command reading JSON lines on stdin and writing scores on stdout (ExternalProcessReward)",
            Create = o => new ExternalProcessReward(o.Command ?? throw new UserError("reward 'external' needs --command, the command to run."), o.Timeout),
        },
    ];

    public static RewardSpec Get(string name) =>
        All.FirstOrDefault(r => r.Name == name) ?? throw new UserError($"unknown reward '{name}'; known rewards: {string.Join(", ", All.Select(r => r.Name))}.");

    /// <summary>The named reward wrapped in the failure policy (<see cref="SafeReward"/>).</summary>
    public static SafeReward CreateSafe(string name, RewardOptions? options = null)
    {
        var o = options ?? new RewardOptions();
        if (o.Timeout <= TimeSpan.Zero) throw new UserError($"--timeout must be > 0 seconds, got {o.Timeout.TotalSeconds}.");
        return new SafeReward(name, Get(name).Create(o), o.Timeout);
    }
}

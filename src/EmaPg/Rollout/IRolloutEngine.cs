using EmaPg.Model;
using EmaPg.Sampling;

namespace EmaPg.Rollout;

/// <summary>What one rollout produced: the samples and the engine's own metrics (none for the in-process sampler).</summary>
public sealed record RolloutOutput(GenerationResult Generation, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// Where the trainer's rollouts (Alg. 3 lines 4–5) are sampled: in-process by <see cref="Sampler.Generate"/>, or on
/// inference servers over HTTP. θ_old and the anchor are always re-scored in-process; the engine only samples.
/// </summary>
public interface IRolloutEngine : IDisposable
{
    /// <summary>
    /// One response per prompt from <paramref name="policy"/>'s current weights (an engine on other machines first makes
    /// them serve those weights). <paramref name="iteration"/> tags the weights; <paramref name="seed"/> seeds the
    /// in-process sampler (servers draw from their own generators).
    /// </summary>
    RolloutOutput Generate(CausalLM policy, int iteration, IReadOnlyList<int[]> prompts, SamplingOptions options, ulong seed);
}

/// <summary>The in-process rollout: <see cref="Sampler.Generate"/> on the policy itself, seeded per iteration.</summary>
public sealed class LocalRolloutEngine : IRolloutEngine
{
    private static readonly IReadOnlyDictionary<string, double> NoMetrics = new Dictionary<string, double>();

    public RolloutOutput Generate(CausalLM policy, int iteration, IReadOnlyList<int[]> prompts, SamplingOptions options, ulong seed)
    {
        using var generator = new TorchSharp.torch.Generator(seed);
        return new RolloutOutput(Sampler.Generate(policy, prompts, options, generator), NoMetrics);
    }

    public void Dispose() { }
}

/// <summary>No rollout server could serve a request (all errored, timed out or are gone): the run stops here and resumes from its last checkpoint.</summary>
public sealed class RolloutServersUnavailableError(string message) : Common.UserError(message);

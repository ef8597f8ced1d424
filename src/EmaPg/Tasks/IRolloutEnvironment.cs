using EmaPg.Model;
using EmaPg.Sampling;
using static TorchSharp.torch;

namespace EmaPg.Tasks;

/// <summary>
/// A batch of rollouts an environment produced: the generation (its response mask is the LOSS mask, 1 only on the policy's
/// own tokens), the reward of each rollout, and the environment's per-batch metrics (means, by metric name).
/// </summary>
public sealed record RolloutBatch(GenerationResult Generation, double[] Rewards, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// A task whose rollouts are not one sampler call: a multi-turn environment (tool calls, observations the policy did not
/// produce). When a task implements it, training and evaluation take the batch's generation and rewards from it instead of
/// one <see cref="Sampler.Generate"/> call and <see cref="ITask.Reward"/>.
/// </summary>
public interface IRolloutEnvironment
{
    /// <summary>One rollout per problem (problems repeat for groups); <paramref name="returnTopK"/> &gt; 0 keeps the sampler's top-k ids.</summary>
    RolloutBatch Rollout(CausalLM policy, IReadOnlyList<Problem> problems, double temperature, int returnTopK, Generator generator);
}

/// <summary>A task whose reference responses hold tokens that carry no supervised loss (observations inside demonstrations).</summary>
public interface IMaskedSolutions
{
    /// <summary>Per token of <see cref="ITask.EncodeSolution"/>: 1 where the cold start's loss applies, 0 where it does not.</summary>
    float[] SolutionLossMask(Problem problem);
}

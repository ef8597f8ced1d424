using EmaPg.Sampling;
using EmaPg.Tasks;
using static TorchSharp.torch;

namespace EmaPg.Training;

/// <summary>
/// One iteration's batch between making experience and the policy update (Alg. 3 lines 3–12). B rollouts
/// (prompts × group size, grouped consecutively by prompt), Lp the padded prompt width, L the longest response,
/// k = |q|. No tensor here carries gradients: everything is data for the update.
/// </summary>
public sealed record Experience
{
    /// <summary>The problem behind each rollout, [B].</summary>
    public required IReadOnlyList<Problem> Problems { get; init; }
    /// <summary>The rollouts as sampled (ids, masks, sampling log-probs, optional top-k of the sampler).</summary>
    public required GenerationResult Generation { get; init; }
    /// <summary>[B, Lp+L] int64: prompt then response, the input of every forward pass.</summary>
    public required Tensor Sequences { get; init; }
    /// <summary>[B, Lp+L] int64: 1 on positions the model may attend to.</summary>
    public required Tensor AttentionMask { get; init; }
    /// <summary>[B, L] float32: 1 on the policy's own response tokens, which alone carry the policy-gradient, KL and entropy terms.</summary>
    public required Tensor LossMask { get; init; }
    /// <summary>[B, L] float32: log π_sampling at the sampled tokens (0 where the loss mask is 0).</summary>
    public required Tensor SamplingLogp { get; init; }
    /// <summary>[B, L] float32: log π_θold at the sampled tokens (θ_old = θ before this iteration's updates).</summary>
    public required Tensor OldLogp { get; init; }
    /// <summary>[B, L] float32: log π_anchor at the sampled tokens.</summary>
    public required Tensor AnchorLogp { get; init; }
    /// <summary>[B, L, k] int64 index set q of Top-k estimators (top-k of π_old for reverse KL, of the anchor for forward), or null.</summary>
    public Tensor? Q { get; init; }
    /// <summary>[B, L, k] float32: log π_anchor at q, or null.</summary>
    public Tensor? AnchorLogpQ { get; init; }
    /// <summary>[B, L, V] float32: the anchor's full log-probs, only for estimators that need full logits.</summary>
    public Tensor? AnchorFull { get; init; }
    /// <summary>Scalar reward of each rollout, [B].</summary>
    public required double[] Rewards { get; init; }
    /// <summary>[B] float32 advantages.</summary>
    public required Tensor Advantages { get; init; }
    /// <summary>Response tokens sampled (Σ of the loss mask) and the seconds the rollout took.</summary>
    public required long SampledTokens { get; init; }
    public required double SampleSeconds { get; init; }
    /// <summary>What made the rollouts reports about them: an HTTP engine's server metrics, or a multi-turn
    /// <see cref="IRolloutEnvironment"/>'s (turns, searches, …); empty for the in-process sampler.</summary>
    public IReadOnlyDictionary<string, double> RolloutMetrics { get; init; } = new Dictionary<string, double>();

    public long PromptLength => Generation.PromptLength;
    public long ResponseLength => Generation.ResponseLength;
}

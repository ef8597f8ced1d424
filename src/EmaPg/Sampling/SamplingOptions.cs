using EmaPg.Common;

namespace EmaPg.Sampling;

/// <summary>
/// How <see cref="Sampler.Generate"/> draws responses. Filtering (top-k / top-p) is off by default
/// because the KL estimators of the trainer assume the log-probs come from the full softmax.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Logits are divided by this before the softmax; must be &gt; 0.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Take the arg-max instead of sampling (log-probs still reported at <see cref="Temperature"/>).</summary>
    public bool Greedy { get; init; }
    /// <summary>Keep only the k most likely tokens before sampling; 0 = off.</summary>
    public int FilterTopK { get; init; }
    /// <summary>Nucleus filtering: keep the smallest set with mass ≥ p; 1.0 = off.</summary>
    public double FilterTopP { get; init; } = 1.0;
    public int MaxNewTokens { get; init; } = 16;
    /// <summary>Generation of a row ends after it emits one of these (the stop token is kept and carries loss).</summary>
    public IReadOnlyList<int> StopTokens { get; init; } = [];
    /// <summary>
    /// A row also ends when this returns true for its tokens generated so far (the last one included, and kept like a stop
    /// token): stop strings over decoded text, e.g. Search-R1's &lt;/search&gt;. Evaluated on the host after every step.
    /// </summary>
    public Func<IReadOnlyList<int>, bool>? StopWhen { get; init; }
    /// <summary>Written after a row has stopped; such positions have mask 0.</summary>
    public int PadToken { get; init; }
    /// <summary>When &gt; 0, also return the indices of the k most likely tokens of the sampling distribution at every step.</summary>
    public int ReturnTopK { get; init; }

    public SamplingOptions Validate(int vocabSize)
    {
        Check.Range("temperature", Temperature, 0.0, double.PositiveInfinity, minInclusive: false);
        Check.Range("filter top-k", FilterTopK, 0, vocabSize);
        Check.Range("filter top-p", FilterTopP, 0.0, 1.0, minInclusive: false);
        Check.Range("max new tokens", MaxNewTokens, 1, 1 << 20);
        Check.Range("return top-k", ReturnTopK, 0, vocabSize);
        Check.Range("pad token", PadToken, 0, vocabSize - 1);
        foreach (var s in StopTokens) Check.Range("stop token", s, 0, vocabSize - 1);
        return this;
    }
}

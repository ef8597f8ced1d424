using EmaPg.Tokenization;

namespace EmaPg.Tasks;

/// <summary>
/// A verifiable task: a prompt stream for training, a fixed held-out test split, and a reward that
/// checks a sampled response. Implementations must keep the training stream disjoint from the test
/// split and must make <see cref="Reward"/> total (any token sequence → a number, never an exception).
/// </summary>
public interface ITask
{
    string Name { get; }
    /// <summary>The tokenizer prompts and responses use; its end-of-sequence ids stop sampling, its padding id pads batches.</summary>
    ITextTokenizer Tokenizer { get; }
    /// <summary>Identifies everything that changes prompts, answers or tokens; part of cache keys.</summary>
    string Fingerprint { get; }
    /// <summary>Enough new tokens for any reference solution plus EOS; a sensible max-new-tokens for sampling.</summary>
    int MaxResponseTokens { get; }
    /// <summary>The held-out problems, the same on every call and run.</summary>
    IReadOnlyList<Problem> TestSplit { get; }
    /// <summary>A fresh training problem, never one of <see cref="TestSplit"/>; deterministic given <paramref name="rng"/>.</summary>
    Problem SampleTrain(Random rng);
    /// <summary>Prompt ids as fed to the model: BOS followed by the prompt.</summary>
    int[] EncodePrompt(Problem problem);
    /// <summary>Reference response ids: the solution followed by EOS.</summary>
    int[] EncodeSolution(Problem problem);
    /// <summary>Reward of a generated response (ids as sampled, possibly ending in EOS). In [0, 1]; malformed → 0.</summary>
    double Reward(Problem problem, IReadOnlyList<int> response);
}

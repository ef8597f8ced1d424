using EmaPg.Common;
using EmaPg.Data;
using EmaPg.Rewards;
using EmaPg.Tokenization;

namespace EmaPg.Tasks;

/// <summary>
/// A task made of a user's data: prompts from a training split and a test split (<see cref="DatasetReader"/>), rendered
/// with the model's chat template, and a reward from the registry that scores the decoded response against the row's
/// ground truths. The embedded word problems are one such task over generated rows.
/// </summary>
public sealed class DatasetTask : ITask
{
    private readonly IReadOnlyList<Problem> _train;
    private readonly IReward _reward;
    private readonly bool _addSpecialTokens;

    /// <param name="addSpecialTokens">Whether prompt encoding adds the tokenizer's BOS: not for chat-templated prompts, whose
    /// template writes it into the text (Llama 3), as verl does.</param>
    public DatasetTask(string name, IReadOnlyList<PromptExample> train, IReadOnlyList<PromptExample> test, ITextTokenizer tokenizer,
        IReward reward, int maxResponseTokens, bool addSpecialTokens, string fingerprint)
    {
        if (train.Count == 0) throw new UserError($"task '{name}': the training split is empty.");
        if (test.Count == 0) throw new UserError($"task '{name}': the test split is empty.");
        Check.Range("max_new_tokens", maxResponseTokens, 1, 1 << 20);
        Name = name;
        Tokenizer = tokenizer;
        _reward = reward;
        _addSpecialTokens = addSpecialTokens;
        MaxResponseTokens = maxResponseTokens;
        Fingerprint = fingerprint;
        _train = train.Select(ToProblem).ToArray();
        TestSplit = test.Select(ToProblem).ToArray();
    }

    public string Name { get; }
    public ITextTokenizer Tokenizer { get; }
    public string Fingerprint { get; }
    public int MaxResponseTokens { get; }
    public IReadOnlyList<Problem> TestSplit { get; }
    public int TrainSize => _train.Count;

    private static Problem ToProblem(PromptExample e) => new(e.PromptText, e.GroundTruths[0], e.Solution ?? "") { Example = e };

    /// <summary>A training row drawn uniformly (with replacement) by <paramref name="rng"/>, which the trainer seeds per iteration.</summary>
    public Problem SampleTrain(Random rng) => _train[rng.Next(_train.Count)];

    public int[] EncodePrompt(Problem problem) => Tokenizer.Encode(problem.Prompt, _addSpecialTokens);

    /// <summary>The solution's ids and the first end-of-sequence id (for Qwen's chat models, &lt;|im_end|&gt;, which closes the assistant turn).</summary>
    public int[] EncodeSolution(Problem problem)
    {
        if (string.IsNullOrEmpty(problem.Solution))
            throw new UserError($"{problem.Example?.Origin ?? Name}: supervised fine-tuning needs a reference response (a 'solution' or 'response' field, or a trailing assistant message).");
        return [.. Tokenizer.Encode(problem.Solution), Tokenizer.EosTokenIds[0]];
    }

    /// <summary>The reward of the decoded response (special tokens such as the stop token skipped) against the row.</summary>
    public double Reward(Problem problem, IReadOnlyList<int> response) =>
        _reward.Score(Tokenizer.Decode(response, skipSpecialTokens: true), problem.Example ?? PromptExample.ForAnswers(problem.Answer));
}

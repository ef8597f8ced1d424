using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Sampling;

/// <summary>The k most likely next tokens after ids[0..i] and their log-probs (float32 softmax over the full vocabulary).</summary>
public sealed record TopTokens(IReadOnlyList<int> TopIds, IReadOnlyList<float> TopLogprobs);

/// <summary>One-shot queries of a model folder: what <c>emapg model score</c> and <c>model generate</c> print.
/// The model is loaded in float32 whatever its stored dtype, so every number is float32 compute.</summary>
public static class ModelQueries
{
    /// <summary>Position i: the top-<paramref name="topK"/> of log softmax(logits) after ids[0..i], one forward, no padding.</summary>
    public static IReadOnlyList<TopTokens> TopLogProbs(CausalLM model, IReadOnlyList<int> ids, int topK)
    {
        RequireIds(ids, model.Config.VocabSize);
        Check.Range("--top", topK, 1, model.Config.VocabSize);
        if (ids.Count > model.Config.MaxPositionEmbeddings)
            throw new UserError($"{ids.Count} ids exceed max_position_embeddings {model.Config.MaxPositionEmbeddings}.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var input = tensor(ids.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: model.Device).unsqueeze(0);
        var logp = model.Forward(input).squeeze(0).to_type(ScalarType.Float32).log_softmax(-1);
        var (values, indexes) = logp.topk(topK, dim: -1);
        var v = values.cpu().data<float>().ToArray();
        var ix = indexes.cpu().data<long>().ToArray();
        return Enumerable.Range(0, ids.Count).Select(i => new TopTokens(
            ix.Skip(i * topK).Take(topK).Select(x => (int)x).ToArray(),
            v.Skip(i * topK).Take(topK).ToArray())).ToList();
    }

    /// <summary>Loads <paramref name="directory"/> in float32 and scores <paramref name="ids"/>; see <see cref="TopLogProbs(CausalLM, IReadOnlyList{int}, int)"/>.</summary>
    public static IReadOnlyList<TopTokens> TopLogProbs(string directory, IReadOnlyList<int> ids, int topK)
    {
        using var m = HfCheckpoint.Load(directory, ScalarType.Float32);
        return TopLogProbs(m.Model, ids, topK);
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> by up to <paramref name="maxNewTokens"/> tokens in float32,
    /// stopping after an eos id of the folder's generation config; temperature 0 is greedy, otherwise the
    /// full softmax at that temperature is sampled with a generator seeded by <paramref name="seed"/>.
    /// Returns the new ids (including the stop token when one was emitted).
    /// </summary>
    public static IReadOnlyList<int> Generate(string directory, IReadOnlyList<int> prompt, int maxNewTokens, double temperature, long seed)
    {
        Check.Range("--temperature", temperature, 0.0, double.PositiveInfinity);
        using var m = HfCheckpoint.Load(directory, ScalarType.Float32);
        var stop = HfModelInfo.StopTokenIds(directory, m.Config).Where(i => i >= 0 && i < m.Model.Config.VocabSize).ToList();
        return Generate(m.Model, prompt, new SamplingOptions
        {
            MaxNewTokens = maxNewTokens,
            Greedy = temperature == 0,
            Temperature = temperature == 0 ? 1.0 : temperature,
            StopTokens = stop,
        }, seed);
    }

    /// <summary>One prompt through <see cref="Sampler.Generate"/>.</summary>
    public static IReadOnlyList<int> Generate(CausalLM model, IReadOnlyList<int> prompt, SamplingOptions options, long seed)
    {
        RequireIds(prompt, model.Config.VocabSize);
        Check.Range("--max-new-tokens", options.MaxNewTokens, 1, model.Config.MaxPositionEmbeddings);
        using var gen = new Generator((ulong)seed, model.Device);
        using var result = Sampler.Generate(model, [prompt.ToArray()], options, gen);
        return result.ResponseTokens[0];
    }

    private static void RequireIds(IReadOnlyList<int> ids, int vocabSize)
    {
        if (ids.Count == 0) throw new UserError("--ids must hold at least one token id.");
        foreach (var id in ids)
            if (id < 0 || id >= vocabSize)
                throw new UserError($"token id {id} is outside the model's vocabulary [0, {vocabSize - 1}].");
    }
}

using EmaPg.Common;
using EmaPg.Model;
using EmaPg.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Environments.Search;

/// <summary>Search-R1's generation limits (its GenerationConfig), in tokens.</summary>
public sealed record SearchEnvOptions
{
    /// <summary>Turns that may search (max_turns); a final turn follows in which a search is not executed. 0 disables searching.</summary>
    public int MaxTurns { get; init; } = 2;
    /// <summary>Passages per search.</summary>
    public int TopK { get; init; } = 3;
    /// <summary>New tokens per model turn (Search-R1's max_response_length).</summary>
    public int MaxTurnTokens { get; init; } = 500;
    /// <summary>Tokens of one observation, tags included (max_obs_length).</summary>
    public int MaxObservationTokens { get; init; } = 500;
    /// <summary>All tokens after the prompt, the model's and the observations'; an episode that reaches it ends without an answer.</summary>
    public int MaxResponseTokens { get; init; } = 2048;

    public SearchEnvOptions Validate()
    {
        Check.Range("max_turns", MaxTurns, 0, 64);
        Check.Range("retrieval_topk", TopK, 1, 100);
        Check.Range("max_turn_tokens", MaxTurnTokens, 1, 1 << 20);
        Check.Range("max_obs_tokens", MaxObservationTokens, 1, 1 << 20);
        Check.Range("max_response_tokens", MaxResponseTokens, 1, 1 << 22);
        return this;
    }
}

/// <summary>One model turn: its tokens (the stop string or EOS included), their sampling log-probs and, optionally, the top-k ids [len·k].</summary>
public sealed record GeneratedTurn(int[] Tokens, float[] LogProbs, long[]? TopK);

/// <summary>Generates one turn for each of a batch of contexts, in one batch; a turn ends at a stop string, EOS or the budget.</summary>
public interface ITurnGenerator
{
    /// <summary>Width of <see cref="GeneratedTurn.TopK"/> per token (0 = none).</summary>
    int TopK { get; }
    IReadOnlyList<GeneratedTurn> Generate(IReadOnlyList<int[]> contexts, int maxNewTokens);
}

/// <summary>
/// Turns from the library's batched KV-cached <see cref="Sampler"/>: EOS and Search-R1's stop strings (over decoded text)
/// end a row. The sampler's seeded generator carries over between turns, so a rollout is reproducible.
/// </summary>
public sealed class SamplerTurnGenerator(CausalLM model, TextCodec codec, SamplingOptions options, Generator? generator = null) : ITurnGenerator
{
    private readonly Func<IReadOnlyList<int>, bool> _stop = StopStringCriterion.Create(codec.Decode, SearchR1Protocol.StopStrings);

    public int TopK => options.ReturnTopK;

    public IReadOnlyList<GeneratedTurn> Generate(IReadOnlyList<int[]> contexts, int maxNewTokens)
    {
        using var scope = NewDisposeScope();
        using var gen = Sampler.Generate(model, contexts, options with { MaxNewTokens = maxNewTokens, StopTokens = codec.EosIds, PadToken = codec.PadId, StopWhen = _stop }, generator);
        var logp = gen.LogProbs.cpu().data<float>().ToArray();
        var top = gen.TopKIndices?.cpu().data<long>().ToArray();
        int width = (int)gen.ResponseLength, k = TopK;
        return gen.ResponseTokens.Select((tokens, i) => new GeneratedTurn(
            tokens, logp.AsSpan(i * width, tokens.Length).ToArray(),
            top is null ? null : top.AsSpan(i * width * k, tokens.Length * k).ToArray())).ToList();
    }
}

/// <summary>
/// One episode of the search environment. <see cref="Response"/> holds everything after the prompt in order: the model's
/// turns and the observations between them; <see cref="LossMask"/> is 1 exactly on the model's own tokens, and
/// <see cref="SamplingLogp"/> is their sampling log-prob (0 on observations).
/// </summary>
public sealed record SearchEpisode
{
    public required int[] Prompt { get; init; }
    public required int[] Response { get; init; }
    public required float[] LossMask { get; init; }
    public required float[] SamplingLogp { get; init; }
    /// <summary>[Response.Length · k] top-k ids of the sampling distribution at model tokens (0 at observations), or null.</summary>
    public long[]? TopK { get; init; }
    /// <summary>The model's turns, decoded, one per turn (observations excluded).</summary>
    public required IReadOnlyList<string> Turns { get; init; }
    /// <summary>The answer the episode ended with, or null (no answer before the turn limit or the token budget).</summary>
    public string? Answer { get; init; }
    public int Searches { get; init; }
    public int ValidActions { get; init; }
    public int ObservationTokens { get; init; }
    public int RetrievalErrors { get; init; }
    /// <summary>Ended by <see cref="SearchEnvOptions.MaxResponseTokens"/> rather than by an answer or the turn limit.</summary>
    public bool Truncated { get; init; }

    /// <summary>Search-R1's reward: 1 when the answer equals a gold answer after SQuAD normalisation, 0 otherwise and without an answer.</summary>
    public double ExactMatch(IReadOnlyList<string> goldenAnswers)
    {
        if (Answer is null) return 0.0;
        var a = Rewards.ExactMatchReward.Normalize(Answer);
        return goldenAnswers.Any(g => Rewards.ExactMatchReward.Normalize(g) == a) ? 1.0 : 0.0;
    }
}

/// <summary>Per-batch means of the episode metrics the trainer logs.</summary>
public sealed record SearchRolloutMetrics(double Turns, double Searches, double ValidActionRate, double ObservationTokens, double AnswerRate, int RetrievalErrors)
{
    public static SearchRolloutMetrics Of(IReadOnlyList<SearchEpisode> e) => new(
        e.Average(x => x.Turns.Count), e.Average(x => x.Searches),
        e.Sum(x => x.ValidActions) / (double)Math.Max(1, e.Sum(x => x.Turns.Count)),
        e.Average(x => x.ObservationTokens), e.Average(x => x.Answer is null ? 0.0 : 1.0), e.Sum(x => x.RetrievalErrors));
}

/// <summary>
/// Search-R1's multi-turn rollout in lock step: per turn, the active episodes generate in one batch, their searches go
/// to the retriever in one call, and each observation (passages, the corrective message, or a retrieval error) is appended
/// to the context as tokens the policy did not produce. Up to <see cref="SearchEnvOptions.MaxTurns"/> turns may search;
/// a final turn follows whose search, if any, is not executed.
/// </summary>
public sealed class SearchRollout(ITurnGenerator generator, IRetriever retriever, TextCodec codec, SearchEnvOptions options)
{
    private readonly SearchEnvOptions _options = options.Validate();
    // Tokens of the <information> tags alone; the ObservationTokens call also rejects a max_obs_tokens below it.
    private readonly int _tagTokens = SearchR1Protocol.ObservationTokens("", codec.Encode, options.MaxObservationTokens).Length;

    private sealed class State(int[] prompt)
    {
        public readonly int[] Prompt = prompt;
        public readonly List<int> Response = [];
        public readonly List<float> Mask = [], Logp = [];
        public readonly List<long> TopK = [];
        public readonly List<string> Turns = [];
        public string? Answer;
        public int Searches, Valid, ObsTokens, Errors;
        public bool Done, Truncated;
        public int Budget(int max) => max - Response.Count;
        public int[] Context() => [.. Prompt, .. Response];
    }

    public IReadOnlyList<SearchEpisode> Run(IReadOnlyList<int[]> prompts)
    {
        var states = prompts.Select(p => new State(p)).ToList();
        int k = generator.TopK;
        for (int turn = 0; turn <= _options.MaxTurns; turn++)
        {
            bool final = turn == _options.MaxTurns;
            var active = states.Where(s => !s.Done).ToList();
            if (active.Count == 0) break;
            int maxNew = active.Max(s => Math.Min(_options.MaxTurnTokens, s.Budget(_options.MaxResponseTokens)));
            var turns = generator.Generate(active.Select(s => s.Context()).ToList(), maxNew);
            var searches = new List<(State S, string Query)>();
            for (int i = 0; i < active.Count; i++)
            {
                var s = active[i];
                var t = turns[i];
                int keep = Math.Min(t.Tokens.Length, Math.Min(_options.MaxTurnTokens, s.Budget(_options.MaxResponseTokens)));
                s.Response.AddRange(t.Tokens.AsSpan(0, keep));
                s.Mask.AddRange(Enumerable.Repeat(1f, keep));
                s.Logp.AddRange(t.LogProbs.AsSpan(0, keep));
                if (k > 0) s.TopK.AddRange(t.TopK!.AsSpan(0, keep * k));
                var text = codec.Decode(t.Tokens.AsSpan(0, keep).ToArray());
                s.Turns.Add(text);
                var action = SearchR1Protocol.ParseAction(text);
                if (action.Kind != AgentActionKind.Invalid) s.Valid++;
                if (action.Kind == AgentActionKind.Answer) { s.Answer = action.Content; s.Done = true; }
                else if (final) s.Done = true;
                else if (action.Kind == AgentActionKind.Search) searches.Add((s, action.Content));
                else Observe(s, codec.Encode(SearchR1Protocol.InvalidActionMessage), k);
                if (!s.Done && s.Budget(_options.MaxResponseTokens) <= 0) { s.Done = true; s.Truncated = true; }
            }
            searches.RemoveAll(x => x.S.Done);
            if (searches.Count > 0) Search(searches, k);
        }
        return states.Select(s => new SearchEpisode
        {
            Prompt = s.Prompt, Response = [.. s.Response], LossMask = [.. s.Mask], SamplingLogp = [.. s.Logp], TopK = k > 0 ? [.. s.TopK] : null,
            Turns = s.Turns, Answer = s.Answer, Searches = s.Searches, ValidActions = s.Valid, ObservationTokens = s.ObsTokens,
            RetrievalErrors = s.Errors, Truncated = s.Truncated,
        }).ToList();
    }

    /// <summary>One retriever call for every search of this turn; a failure becomes an error observation for each of them.</summary>
    private void Search(List<(State S, string Query)> searches, int k)
    {
        IReadOnlyList<IReadOnlyList<RetrievedPassage>>? results = null;
        string? error = null;
        try { results = retriever.Retrieve(searches.Select(x => x.Query).ToList(), _options.TopK); }
        catch (RetrieverException e) { error = e.Message; }
        for (int i = 0; i < searches.Count; i++)
        {
            var s = searches[i].S;
            s.Searches++;
            if (error is not null) s.Errors++;
            string body = error is null ? SearchR1Protocol.FormatPassages(results![i]) : $"Search failed: {error}";
            // Passages are cut to what the episode's budget still allows; below the bare tags it ends.
            int limit = Math.Min(_options.MaxObservationTokens, s.Budget(_options.MaxResponseTokens));
            if (limit < _tagTokens) { s.Done = true; s.Truncated = true; continue; }
            Observe(s, SearchR1Protocol.ObservationTokens(body, codec.Encode, limit), k);
        }
    }

    /// <summary>Appends an observation (loss mask 0), or ends the episode when it does not fit the token budget.</summary>
    private void Observe(State s, int[] tokens, int k)
    {
        if (tokens.Length > s.Budget(_options.MaxResponseTokens)) { s.Done = true; s.Truncated = true; return; }
        s.Response.AddRange(tokens);
        s.Mask.AddRange(Enumerable.Repeat(0f, tokens.Length));
        s.Logp.AddRange(Enumerable.Repeat(0f, tokens.Length));
        if (k > 0) s.TopK.AddRange(Enumerable.Repeat(0L, tokens.Length * k));
        s.ObsTokens += tokens.Length;
    }

    /// <summary>
    /// The episodes as the trainer's <see cref="GenerationResult"/>: prompts left-padded, responses right-padded, and the
    /// response mask set to the LOSS mask (1 on the model's tokens only), so that scoring, the experience's loss mask and the
    /// update see observations as context that carries no loss.
    /// </summary>
    public static GenerationResult ToGeneration(IReadOnlyList<SearchEpisode> episodes, int padId, Device device)
    {
        using var scope = NewDisposeScope();
        var (promptIds, promptMask) = PromptBatch.LeftPad(episodes.Select(e => e.Prompt).ToList(), padId, device);
        var (responseIds, _) = PromptBatch.RightPad(episodes.Select(e => e.Response).ToList(), padId, device);
        long b = episodes.Count, width = responseIds.shape[1];
        var loss = new float[b * width];
        var logp = new float[b * width];
        int k = episodes.FirstOrDefault(e => e.TopK is not null && e.Response.Length > 0) is { } f ? f.TopK!.Length / f.Response.Length : 0;
        var top = episodes.All(e => e.TopK is not null) && k > 0 ? new long[b * width * k] : null;
        for (int i = 0; i < b; i++)
        {
            var e = episodes[i];
            e.LossMask.CopyTo(loss, i * width);
            e.SamplingLogp.CopyTo(logp, i * width);
            if (top is not null) e.TopK!.CopyTo(top, i * width * k);
        }
        var stopped = episodes.Select(e => e.Answer is not null).ToArray();
        return new GenerationResult(promptIds.MoveToOuterDisposeScope(), promptMask.MoveToOuterDisposeScope(), responseIds.MoveToOuterDisposeScope(),
            tensor(loss, [b, width], device: device).MoveToOuterDisposeScope(), tensor(logp, [b, width], device: device).MoveToOuterDisposeScope(),
            top is null ? null : tensor(top, [b, width, k], device: device).MoveToOuterDisposeScope(),
            episodes.Select(e => e.Response).ToArray(), stopped);
    }
}

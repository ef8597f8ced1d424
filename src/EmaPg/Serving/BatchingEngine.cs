using System.Threading.Channels;
using EmaPg.Common;
using EmaPg.Sampling;
using static TorchSharp.torch;

namespace EmaPg.Serving;

/// <summary>One request's sampling: every prompt row (a prompt repeated n times is n rows) and how to sample them.</summary>
internal sealed record GenerationJob(IReadOnlyList<int[]> Rows, bool Greedy, double Temperature, int MaxTokens, int[] StopIds,
    int TopK, double TopP, int FilterTopK, long? Seed)
{
    public TaskCompletionSource<JobResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>A sampled row: tokens (through the stop token), their log-probs under the sampling distribution, and per position
/// the top-k ids and log-probs of that distribution (descending).</summary>
internal sealed record RowResult(int[] Tokens, float[] LogProbs, int[][] TopIds, float[][] TopLogProbs, bool Stopped);

/// <summary>A job's rows, with the model that sampled them (its tokenizer decodes them).</summary>
internal sealed record JobResult(IReadOnlyList<RowResult> Rows, ServedModel Model);

/// <summary>A weight reload, ordered with the sampling jobs: jobs queued before it sample the old weights.</summary>
internal sealed record ReloadJob(string? Directory, string? Version)
{
    public TaskCompletionSource<string> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// The server's one generation loop: requests of all clients wait in a queue; each turn takes every waiting job and runs
/// the compatible ones (same sampling distribution and stop ids, fitting the context) as one batched
/// <see cref="Sampler.Generate"/>. Seeded jobs run alone with their own generator, so a seed reproduces its answer.
/// Reloads run between turns. All tensor work happens on this loop's thread.
/// </summary>
internal sealed class BatchingEngine : IDisposable
{
    private readonly Channel<object> _queue = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Thread _thread;
    private readonly int _maxRows;
    private readonly Generator _rng;
    private volatile ServedModel _model;
    private int _reloads;

    public BatchingEngine(ServedModel model, int maxBatchRows, long seed)
    {
        _model = model;
        _maxRows = maxBatchRows;
        _rng = new Generator((ulong)seed);
        _thread = new Thread(Loop) { IsBackground = true, Name = "emapg-serve-generation" };
        _thread.Start();
    }

    /// <summary>The model now served (for validation; the loop may swap it at a reload).</summary>
    public ServedModel Model => _model;

    public Task<JobResult> Submit(GenerationJob job)
    {
        if (!_queue.Writer.TryWrite(job)) throw new InvalidOperationException("the server is shutting down");
        return job.Done.Task;
    }

    public Task<string> Reload(ReloadJob job)
    {
        if (!_queue.Writer.TryWrite(job)) throw new InvalidOperationException("the server is shutting down");
        return job.Done.Task;
    }

    private void Loop()
    {
        var reader = _queue.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            var groups = new List<List<GenerationJob>>();
            while (reader.TryRead(out var item))
            {
                if (item is ReloadJob reload)
                {
                    Flush(groups);
                    DoReload(reload);
                    continue;
                }
                var job = (GenerationJob)item;
                var group = job.Seed is null ? groups.FirstOrDefault(g => Fits(g, job)) : null;
                if (group is null) groups.Add([job]);
                else group.Add(job);
            }
            Flush(groups);
        }
    }

    private bool Fits(List<GenerationJob> g, GenerationJob job)
    {
        var first = g[0];
        if (first.Seed is not null || first.Greedy != job.Greedy || first.Temperature != job.Temperature || first.TopP != job.TopP
            || first.FilterTopK != job.FilterTopK || !first.StopIds.AsSpan().SequenceEqual(job.StopIds))
            return false;
        int rows = g.Sum(j => j.Rows.Count) + job.Rows.Count;
        int width = g.Concat([job]).Max(j => j.Rows.Max(r => r.Length)) + g.Concat([job]).Max(j => j.MaxTokens);
        return rows <= _maxRows && width <= _model.MaxPositions;
    }

    private void Flush(List<List<GenerationJob>> groups)
    {
        foreach (var g in groups) Run(g);
        groups.Clear();
    }

    /// <summary>Batched generations run so far (each serves one or more requests).</summary>
    public int BatchesRun => _batches;
    private int _batches;

    private void Run(List<GenerationJob> jobs)
    {
        Interlocked.Increment(ref _batches);
        var model = _model;
        try
        {
            var first = jobs[0];
            var rows = jobs.SelectMany(j => j.Rows).ToList();
            int topK = jobs.Max(j => j.TopK);
            var options = new SamplingOptions
            {
                Greedy = first.Greedy, Temperature = first.Temperature, FilterTopP = first.TopP, FilterTopK = first.FilterTopK,
                MaxNewTokens = jobs.Max(j => j.MaxTokens), StopTokens = first.StopIds, ReturnTopK = topK,
                PadToken = first.StopIds.Length > 0 ? first.StopIds[0] : 0,
            };
            using var scope = NewDisposeScope();
            using var seeded = first.Seed is { } s ? new Generator((ulong)s) : null;
            using var gen = Sampler.Generate(model.Model, rows, options, seeded ?? _rng);
            int l = (int)gen.ResponseLength;
            var logp = gen.LogProbs.cpu().data<float>().ToArray();
            var topIds = gen.TopKIndices?.cpu().data<long>().ToArray();
            var topLogp = gen.TopKLogProbs?.cpu().data<float>().ToArray();
            int r = 0;
            foreach (var job in jobs)
            {
                var results = new RowResult[job.Rows.Count];
                for (int i = 0; i < results.Length; i++, r++)
                {
                    var tokens = gen.ResponseTokens[r];
                    bool stopped = gen.Stopped[r];
                    // The batch ran to the longest job's max_tokens; this job's rows end at its own (sampling is causal, so the cut is exact).
                    if (tokens.Length > job.MaxTokens) { tokens = tokens[..job.MaxTokens]; stopped = false; }
                    int n = tokens.Length;
                    results[i] = new RowResult(tokens,
                        [.. Enumerable.Range(0, n).Select(j => logp[r * l + j])],
                        [.. Enumerable.Range(0, n).Select(j => Enumerable.Range(0, job.TopK).Select(c => (int)topIds![((long)r * l + j) * topK + c]).ToArray())],
                        [.. Enumerable.Range(0, n).Select(j => Enumerable.Range(0, job.TopK).Select(c => topLogp![((long)r * l + j) * topK + c]).ToArray())],
                        stopped);
                }
                job.Done.TrySetResult(new JobResult(results, model));
            }
        }
        catch (Exception e)
        {
            foreach (var job in jobs) job.Done.TrySetException(e);
        }
    }

    private void DoReload(ReloadJob job)
    {
        try
        {
            var old = _model;
            var version = job.Version ?? (++_reloads).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (job.Version is not null) _reloads++;
            var fresh = ServedModel.Load(job.Directory ?? old.Directory, version);
            _model = fresh;
            old.Dispose();
            job.Done.TrySetResult(version);
        }
        catch (Exception e)
        {
            job.Done.TrySetException(e is UserError or IOException ? e : new UserError($"loading weights failed: {e.Message}"));
        }
    }

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _thread.Join(TimeSpan.FromSeconds(30));
        _model.Dispose();
        _rng.Dispose();
    }
}

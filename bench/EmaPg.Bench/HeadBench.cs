using System.Diagnostics;
using EmaPg.Divergences;
using EmaPg.Heads;
using EmaPg.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Bench;

/// <summary>Settings of <see cref="HeadBench"/>; the CLI validates them (emapg bench head).</summary>
public sealed record HeadBenchOptions
{
    /// <summary>|V|: Qwen2's 151936 by default.</summary>
    public int Vocab { get; init; } = 151936;
    /// <summary>H: Qwen2-0.5B's 896.</summary>
    public int Hidden { get; init; } = 896;
    public int Tokens { get; init; } = 4096;
    public int K { get; init; } = 32;
    /// <summary>Timed repetitions of each path; the first of naive and fused also gives max_rel_diff.</summary>
    public int Reps { get; init; } = 3;
    /// <summary>Rows per chunk of the fused loss; null: <see cref="TokenHead.DefaultRowChunk"/> of |V|.</summary>
    public int? ChunkSize { get; init; }
    public int Seed { get; init; }
    public bool Quick { get; init; }

    /// <summary>The tiny problem of --quick (tests, smoke runs): figures from it mean nothing.</summary>
    public static HeadBenchOptions QuickDefaults => new() { Vocab = 3000, Hidden = 32, Tokens = 96, K = 8, Reps = 2, ChunkSize = 40, Quick = true };
}

/// <summary>One path (naive or fused), forward + backward of the whole loss from h and W.</summary>
/// <param name="PeakExtraBytes">peak RSS extra minus the bytes of the two gradients every path returns (∂h, ∂W); null where RSS is unavailable</param>
/// <param name="PeakRssExtraBytes">measured peak RSS extra (gradients included), median over the timed repetitions</param>
/// <param name="MedianCpuMs">process CPU time (user + system, all threads) of the run: less sensitive than wall time to other processes on a shared machine</param>
public sealed record HeadMeasurement(
    double MedianMs,
    long? PeakExtraBytes,
    double MinMs,
    double MaxMs,
    IReadOnlyList<double> TimesMs,
    long? PeakRssExtraBytes,
    IReadOnlyList<long> PeakRssExtraBytesAll,
    long TrackedForwardBytes,
    double MedianCpuMs,
    IReadOnlyList<double> CpuMs);

/// <summary>The ratios the goals are stated in (null where a figure is unavailable).</summary>
public sealed record HeadRatios(double? NaiveOverFusedTime, double? FusedOverFloorTime, double? NaiveOverFusedPeakExtra, double? NaiveOverFusedPeakRssExtra,
    double? NaiveOverFusedCpu, double? FusedOverFloorCpu);

/// <summary>The goals: fused peak extra ≤ naive / 20, fused time ≤ naive time, fused time ≤ 1.5 × floor.</summary>
public sealed record HeadGoals(bool? MemoryAtMostOneTwentieth, bool TimeAtMostNaive, bool TimeAtMostOneAndAHalfFloor);

public sealed record HeadBenchReport(
    HeadMeasurement Naive,
    HeadMeasurement Fused,
    double FloorMs,
    double MaxRelDiff,
    double FloorCpuMs,
    string Benchmark,
    string Date,
    int Vocab,
    int Hidden,
    int Tokens,
    int K,
    int Reps,
    int ChunkSize,
    bool Quick,
    string DType,
    IReadOnlyList<double> FloorTimesMs,
    IReadOnlyDictionary<string, double> RelDiffs,
    long GradientBytes,
    HeadRatios Ratios,
    HeadGoals Goals,
    int TorchThreads,
    int ProcessorCount,
    string Os,
    string TorchSharp,
    bool PeakRssAvailable,
    IReadOnlyDictionary<string, string> Definitions);

/// <summary>
/// The LM head plus the trainer's loss, from hidden states to ∂h and ∂W: the unfused path (full logits [N,|V|],
/// log-softmax, gathers, entropy; <see cref="TokenHead.Unfused"/>) against the fused, chunked one
/// (<see cref="TokenHead.Fused"/>), and the floor: the three GEMMs of an LM head forward + backward alone.
/// Both paths feed the same loss (clip-higher + β·Top-k reverse KL − c·entropy), so they differ only in the head.
/// Runs are interleaved (the order rotates every repetition) in one process; medians are reported.
/// </summary>
public static class HeadBench
{
    public const double Beta = 0.1, EntropyCoef = 0.01;

    public static readonly IReadOnlyDictionary<string, string> Definitions = new Dictionary<string, string>
    {
        ["time"] = "Wall time of one forward + backward from h [N,H] and W [|V|,H] (fresh leaves that require grad) to their gradients: the head's per-token outputs (log π at the sampled token, log Z, entropy, log π at q [N,k]) and the loss "
            + $"−J_clip-higher + {Beta}·topk-reverse − {EntropyCoef}·entropy (token means, KlRegularizedLoss + Estimators \"topk-reverse\"). naive: TokenHead.Unfused (logits [N,|V|], log_softmax, gathers, −Σ π log π). "
            + "fused: TokenHead.FusedLoss (row chunks of 2^25 / |V| tokens by default; per chunk the logits [rows,|V|], the outputs, the loss's gradient w.r.t. them, and ∂h, ∂W of the chunk formed in the forward pass: 3 GEMMs, nothing recomputed; backward only scales the kept gradients). Median over the timed repetitions.",
        ["cpu"] = "Process CPU time (user + system, all threads) over the same interval as time: on a machine shared with other processes it varies less than wall time, which depends on how much CPU the others take at that moment. Includes the first repetition's tracked-bytes count (small).",
        ["floor"] = "The three GEMMs of an LM head forward + backward alone, N×H×|V| each: logits = h·Wᵀ, ∂h = G·W, ∂W = Gᵀ·h (G: the logits standing in for their gradient). No softmax, no loss.",
        ["peak_extra_bytes"] = "Measured peak RSS extra (VmHWM reset through /proc/self/clear_refs before the run, minus VmRSS just before it) minus the bytes of ∂h [N,H] and ∂W [|V|,H], the gradients every path must return "
            + "(and training keeps in .grad), at least 0: what the head's loss computation needs beyond them. For the naive path this may undercount (its peak can come before ∂W exists), which only makes the ratio conservative. Median over the timed repetitions. CPU on Linux only.",
        ["peak_rss_extra_bytes"] = "The same measurement without subtracting the gradients.",
        ["tracked_forward_bytes"] = "Counted: bytes of the distinct tensor storages alive at the end of the forward pass that the run created (inputs excluded); TorchSharp keeps every intermediate of a DisposeScope alive until it ends. The fused loss's ∂h and ∂W, formed in its forward pass and held by the autograd graph, are not counted here (they are the gradients, in peak_rss_extra_bytes).",
        ["max_rel_diff"] = "Largest ‖fused − naive‖ / ‖naive‖ over the outputs (log π at the sampled token, log Z, entropy, log π at q, the per-token KL, the loss) and the gradients ∂h and ∂W, from the first repetition; rel_diffs lists each.",
        ["problem"] = "Synthetic, float32: h ~ N(0,1), W ~ N(0, (3/√H)²) (logits of std ≈ 3); q = the policy's top-k; sampled tokens: half from q, half uniform over |V| (both Top-k branches occur); π_old = π_θ at the start; anchor log-probs = the policy's + N(0, 0.3²) (the cost does not depend on their values); advantages ~ N(0,1).",
        ["not measured"] = "The model body below the head, the optimizer, choosing q and sampling, and any GPU: CPU only.",
    };

    public static HeadBenchReport Run(HeadBenchOptions o, Action<string>? progress = null)
    {
        bool rss = MemoryProbe.RssAvailable;
        int chunk = o.ChunkSize ?? TokenHead.DefaultRowChunk(o.Vocab);
        using var scope = NewDisposeScope();
        progress?.Invoke($"setting up |V| = {o.Vocab}, H = {o.Hidden}, N = {o.Tokens}, k = {o.K}, chunk = {chunk}");
        var p = Problem.Create(o);

        // No separate probe runs (at full size one run of each path takes minutes on 2 cores): the first repetition of
        // naive and fused also counts the tracked forward bytes (with the clock stopped) and keeps outputs and gradients
        // for max_rel_diff.
        var timed = new Dictionary<Kind, List<Sample>> { [Kind.Naive] = [], [Kind.Fused] = [], [Kind.Floor] = [] };
        var kept = new Dictionary<Kind, Result>();
        Kind[] kinds = [Kind.Naive, Kind.Fused, Kind.Floor];
        for (int r = 0; r < o.Reps; r++)
        {
            foreach (var kind in kinds.Skip(r % 3).Concat(kinds.Take(r % 3)))
            {
                var (sample, result) = Once(kind, p, chunk, rss, first: r == 0);
                timed[kind].Add(sample);
                if (result is not null) kept[kind] = result;
            }
            progress?.Invoke($"rep {r + 1}/{o.Reps}: naive {timed[Kind.Naive][^1].Ms:0} ms, fused {timed[Kind.Fused][^1].Ms:0} ms, floor {timed[Kind.Floor][^1].Ms:0} ms");
        }
        var relDiffs = RelDiffs(kept[Kind.Naive], kept[Kind.Fused]);
        foreach (var k in kept.Values) k.Dispose();

        long gradBytes = MemoryProbe.Bytes(p.Hidden) + MemoryProbe.Bytes(p.Weight);
        HeadMeasurement M(Kind kind)
        {
            var t = timed[kind];
            var ms = t.Select(s => s.Ms).ToList();
            var rssList = t.Where(s => s.RssExtra is not null).Select(s => s.RssExtra!.Value).ToList();
            long? peak = rssList.Count > 0 ? (long)BenchStats.Median(rssList.Select(x => (double)x).ToList()) : null;
            var cpu = t.Select(s => s.CpuMs).ToList();
            return new HeadMeasurement(BenchStats.Median(ms), peak is { } pk ? Math.Max(0, pk - gradBytes) : null, ms.Min(), ms.Max(), ms, peak, rssList, t[0].Tracked,
                BenchStats.Median(cpu), cpu);
        }
        var naive = M(Kind.Naive);
        var fused = M(Kind.Fused);
        double floor = BenchStats.Median(timed[Kind.Floor].Select(s => s.Ms).ToList());
        double floorCpu = BenchStats.Median(timed[Kind.Floor].Select(s => s.CpuMs).ToList());
        var ratios = new HeadRatios(BenchStats.Ratio(naive.MedianMs, fused.MedianMs), BenchStats.Ratio(fused.MedianMs, floor),
            BenchStats.Ratio(naive.PeakExtraBytes, fused.PeakExtraBytes), BenchStats.Ratio(naive.PeakRssExtraBytes, fused.PeakRssExtraBytes),
            BenchStats.Ratio(naive.MedianCpuMs, fused.MedianCpuMs), BenchStats.Ratio(fused.MedianCpuMs, floorCpu));
        var goals = new HeadGoals(
            naive.PeakExtraBytes is { } np && fused.PeakExtraBytes is { } fp ? fp * 20 <= np : null,
            fused.MedianMs <= naive.MedianMs,
            fused.MedianMs <= 1.5 * floor);
        return new HeadBenchReport(naive, fused, floor, relDiffs.Values.Max(), floorCpu, "head", BenchStats.UtcNow(), o.Vocab, o.Hidden, o.Tokens, o.K, o.Reps, chunk, o.Quick, "float32",
            timed[Kind.Floor].Select(s => s.Ms).ToList(), relDiffs, gradBytes, ratios, goals,
            torch.get_num_threads(), Environment.ProcessorCount, BenchStats.Os, BenchStats.TorchSharpVersion, rss, Definitions);
    }

    private enum Kind { Naive, Fused, Floor }

    /// <summary>The synthetic rollout: the policy's head, sampled tokens, q, and the anchor's O(k) log-probs.</summary>
    private sealed class Problem
    {
        public required Tensor Hidden { get; init; }       // [N,H]
        public required Tensor Weight { get; init; }       // [V,H]
        public required Tensor Sampled { get; init; }      // [N] int64
        public required Tensor SamplingLogp { get; init; } // [N]
        public required Tensor AnchorLogp { get; init; }   // [N]
        public required Tensor Q { get; init; }            // [N,k] int64
        public required Tensor AnchorLogpQ { get; init; }  // [N,k]
        public required Tensor Advantages { get; init; }   // [N]
        public Tensor[] All => [Hidden, Weight, Sampled, SamplingLogp, AnchorLogp, Q, AnchorLogpQ, Advantages];

        /// <summary>
        /// One fused pass without gradient (the setup must not cost a full benchmark's worth of GEMMs on 2 cores) gives
        /// the policy's top-k q and log Z; half the sampled tokens are drawn from q, half uniformly from the vocabulary,
        /// so both branches of Top-k KL (p ∈ q, p ∉ q) occur. The anchor's log-probs are the policy's plus noise:
        /// the benchmark times the policy's head and loss, whose cost does not depend on the anchor's values.
        /// </summary>
        public static Problem Create(HeadBenchOptions o)
        {
            torch.random.manual_seed(o.Seed);
            using var setup = NewDisposeScope();
            using var _ = no_grad();
            var h = randn(o.Tokens, o.Hidden);
            var w = randn(o.Vocab, o.Hidden).mul_(3 / Math.Sqrt(o.Hidden));
            var uniform = randint(0, o.Vocab, [o.Tokens], dtype: ScalarType.Int64);
            var policy = TokenHead.Fused(h, w, uniform, topK: o.K);
            Tensor sampled = uniform, samplingLogp = policy.LogpTarget, q = empty(o.Tokens, 0, dtype: ScalarType.Int64), anchorLogpQ = empty(o.Tokens, 0);
            if (o.K > 0)
            {
                q = policy.TopKIndices!;
                var j = randint(0, o.K, [o.Tokens, 1], dtype: ScalarType.Int64);
                var fromQ = rand(o.Tokens).lt(0.5);
                sampled = where(fromQ, q.gather(1, j).squeeze(1), uniform);
                samplingLogp = where(fromQ, policy.TopKLogp!.gather(1, j).squeeze(1), policy.LogpTarget);
                anchorLogpQ = policy.TopKLogp! + randn(o.Tokens, o.K).mul_(0.3);
            }
            var p = new Problem
            {
                Hidden = h, Weight = w, Sampled = sampled.contiguous(), SamplingLogp = samplingLogp.contiguous(),
                AnchorLogp = samplingLogp + randn(o.Tokens).mul_(0.3),
                Q = q.contiguous(), AnchorLogpQ = anchorLogpQ.contiguous(), Advantages = randn(o.Tokens),
            };
            setup.MoveToOuter(p.All);
            return p;
        }
    }

    /// <summary>The trainer's loss from the head's outputs: −J (clip-higher) + β·Top-k reverse KL − c·entropy, token means.</summary>
    internal static (Tensor Loss, Tensor Kl) Loss(TokenHeadOutputs head, Tensor sampled, Tensor samplingLogp, Tensor anchorLogp, Tensor q, Tensor anchorLogpQ, Tensor advantages)
    {
        var kl = Estimators.Get("topk-reverse").Compute(KlInputs.FromHead(head, sampled, samplingLogp, anchorLogp, q, anchorLogpQ), checkFinite: false);
        var mask = ones(head.Count, 1, dtype: ScalarType.Bool);
        var terms = KlRegularizedLoss.Compute(head.LogpTarget.unsqueeze(1), samplingLogp.unsqueeze(1), advantages, mask, kl.unsqueeze(1), Beta, LossAggregationMode.TokenMean);
        return (terms.Loss - EntropyCoef * head.Entropy.mean(), kl);
    }

    /// <summary>
    /// The same loss as <see cref="Loss"/>, for rows [start, start + count) of the N tokens: their share of the token means
    /// (weights 1/N), as the fused loss's token-local callback.
    /// </summary>
    private static (Tensor Loss, Tensor Kl) RowLoss(TokenHeadOutputs rows, Problem p, long start, long count)
    {
        Tensor R(Tensor t) => t.narrow(0, start, count);
        long n = p.Sampled.shape[0];
        var kl = Estimators.Get("topk-reverse").Compute(KlInputs.FromHead(rows, R(p.Sampled), R(p.SamplingLogp), R(p.AnchorLogp), R(p.Q), R(p.AnchorLogpQ)), checkFinite: false);
        var weight = full(count, 1.0 / n, dtype: rows.LogpTarget.dtype);
        var terms = KlRegularizedLoss.ComputeRows(rows.LogpTarget, R(p.SamplingLogp), R(p.Advantages), ones(count, dtype: ScalarType.Bool), kl, Beta,
            (weight, weight, weight), PolicyLosses.Get("clip-higher"));
        return (terms.Loss - EntropyCoef * rows.Entropy.sum() / n, kl);
    }

    private sealed record Sample(double Ms, long? RssExtra, long Tracked, double CpuMs);

    private static double CpuMsNow() => System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;

    /// <summary>What the first repetition keeps to compare the two paths.</summary>
    private sealed class Result : IDisposable
    {
        public required Dictionary<string, Tensor> Tensors { get; init; }
        public void Dispose() { foreach (var t in Tensors.Values) t.Dispose(); }
    }

    private static (Sample Sample, Result? Kept) Once(Kind kind, Problem p, int chunk, bool rss, bool first)
    {
        using var scope = NewDisposeScope();
        long rss0 = 0;
        if (kind == Kind.Floor)
        {
            using var _ = no_grad();
            if (rss) { MemoryProbe.ResetPeak(); rss0 = MemoryProbe.RssBytes(); }
            double cpuF = CpuMsNow();
            var swf = Stopwatch.StartNew();
            var g = p.Hidden.mm(p.Weight.t());
            var dh = g.mm(p.Weight);
            var dw = g.t().mm(p.Hidden);
            swf.Stop();
            return (new Sample(swf.Elapsed.TotalMilliseconds, rss ? MemoryProbe.PeakRssBytes() - rss0 : null, 0, CpuMsNow() - cpuF), null);
        }
        var h = p.Hidden.detach().requires_grad_(true);   // fresh leaves: no gradient carried over between runs
        var w = p.Weight.detach().requires_grad_(true);
        if (rss) { MemoryProbe.ResetPeak(); rss0 = MemoryProbe.RssBytes(); }
        double cpu0 = CpuMsNow();
        var sw = Stopwatch.StartNew();
        TokenHeadOutputs head;
        Tensor loss, kl;
        if (kind == Kind.Naive)
        {
            head = TokenHead.Unfused(h, w, p.Sampled, p.Q);
            (loss, kl) = Loss(head, p.Sampled, p.SamplingLogp, p.AnchorLogp, p.Q, p.AnchorLogpQ, p.Advantages);
        }
        else
        {
            var klAll = zeros(p.Sampled.shape[0], dtype: h.dtype);
            (loss, head) = TokenHead.FusedLoss(h, w, p.Sampled, (rows, start, count) =>
            {
                var (part, klRows) = RowLoss(rows, p, start, count);
                klAll.narrow(0, start, count).copy_(klRows.detach());
                return part;
            }, p.Q, rowChunk: chunk);
            kl = klAll;
        }
        long tracked = 0;
        if (first)
        {
            sw.Stop();
            tracked = MemoryProbe.TrackedBytes(scope, [.. p.All, h, w]);
            sw.Start();
        }
        loss.backward();
        sw.Stop();
        double cpuMs = CpuMsNow() - cpu0;
        long? extra = rss ? MemoryProbe.PeakRssBytes() - rss0 : null;
        Result? kept = null;
        if (first)
        {
            var d = new Dictionary<string, Tensor>
            {
                ["logp_target"] = head.LogpTarget, ["log_z"] = head.LogZ, ["entropy"] = head.Entropy, ["logp_q"] = head.LogpQ!,
                ["kl"] = kl, ["loss"] = loss, ["grad_h"] = h.grad!, ["grad_w"] = w.grad!,
            };
            kept = new Result { Tensors = d.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().MoveToOuterDisposeScope()) };
        }
        return (new Sample(sw.Elapsed.TotalMilliseconds, extra, tracked, cpuMs), kept);
    }

    private static Dictionary<string, double> RelDiffs(Result naive, Result fused)
    {
        using var _ = NewDisposeScope();
        return naive.Tensors.ToDictionary(kv => kv.Key, kv =>
        {
            var a = kv.Value.to_type(ScalarType.Float64);
            var b = fused.Tensors[kv.Key].to_type(ScalarType.Float64);
            double norm = a.norm().item<double>(), diff = (b - a).norm().item<double>();
            return norm > 0 ? diff / norm : diff;
        });
    }
}

using System.Diagnostics;
using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Bench;

/// <summary>Settings of <see cref="KlBench"/>; the CLI validates them (emapg bench kl).</summary>
public sealed record KlBenchOptions
{
    public IReadOnlyList<int> Vocab { get; init; } = [32000, 151936];
    public int Tokens { get; init; } = 2048;
    public int K { get; init; } = 32;
    /// <summary>Timed repetitions per estimator and vocabulary size (after one untimed probe run each).</summary>
    public int Reps { get; init; } = 5;
    public ScalarType DType { get; init; } = ScalarType.Float32;
    public string Device { get; init; } = "cpu";
    public int Seed { get; init; }
    public bool Quick { get; init; }

    /// <summary>The tiny problem of --quick (tests, smoke runs): figures from it mean nothing.</summary>
    public static KlBenchOptions QuickDefaults => new() { Vocab = [256, 1024], Tokens = 64, K = 8, Reps = 2, Quick = true };
}

/// <summary>One estimator at one vocabulary size.</summary>
public sealed record KlMeasurement(
    string Estimator,
    string Inputs,
    double TimeMsMedian,
    double TimeMsMin,
    double TimeMsMax,
    IReadOnlyList<double> TimesMs,
    long StoredNumbersPerToken,
    long StoredInputBytes,
    long TrackedForwardBytes,
    long GradientBytes,
    long? PeakRssExtraBytesMedian,
    IReadOnlyList<long> PeakRssExtraBytes,
    double MeanKl,
    double MeanKlStdErr);

/// <summary>exact ÷ top-k for each figure (null where a figure is unavailable or the divisor is not positive).</summary>
public sealed record KlRatios(double? Time, double? StoredInputs, double? TrackedForward, double? PeakRssExtra);

public sealed record KlBenchRow(int Vocab, KlMeasurement Exact, KlMeasurement Topk, KlRatios ExactOverTopk);

public sealed record KlBenchReport(
    string Benchmark,
    string Date,
    string Device,
    string DType,
    int Tokens,
    int K,
    int Reps,
    bool Quick,
    int TorchThreads,
    int ProcessorCount,
    string Os,
    string TorchSharp,
    bool PeakRssAvailable,
    IReadOnlyDictionary<string, string> Definitions,
    IReadOnlyList<KlBenchRow> Rows);

/// <summary>
/// Exact reverse KL from full logits against Top-k reverse KL from O(k) inputs (paper §5.3), forward and
/// backward, on a synthetic problem. Both estimators come from <see cref="Estimators"/>, so this measures the
/// functions the trainer uses. The two are run back to back, interleaved (the order alternates every
/// repetition), in one process, and medians are reported, because the machine is shared.
/// </summary>
public static class KlBench
{
    public const string ExactName = "exact-reverse";
    public const string TopkName = "topk-reverse";

    /// <summary>What each figure is, for the table's notes and the JSON; keep in step with the code below.</summary>
    public static readonly IReadOnlyDictionary<string, string> Definitions = new Dictionary<string, string>
    {
        ["time"] = "Wall time of one forward + backward of the estimator alone: from policy logits [N,V] (a fresh leaf that requires grad) to their gradient, loss = mean over the N tokens. "
            + "exact-reverse: log_softmax of policy and anchor logits [N,V], Σ_j π_θ(j)(log π_θ(j) − log π_ref(j)). "
            + "topk-reverse: KlInputs.FromPolicyLogits (logsumexp over V + gathers at the sampled token and at q) and the Top-k estimator on the O(k) inputs. "
            + "Median over the timed repetitions; one untimed probe run per estimator comes first. Finite-input checks are off for both.",
        ["stored inputs"] = "What must be kept per token between rollout and training for the KL term, beyond the policy's own logits (recomputed in training anyway). "
            + "exact-reverse: the anchor's logits, N×V numbers (exact reverse KL is on-policy, so no sampling-policy logits). "
            + "topk-reverse: q (k int64 indices), log π_ref at q (k), log π_ref and log π_sampling at the sampled token, and the sampled token (int64): N×(2k+3) numbers. "
            + "Bytes use the actual dtypes (indices are int64). The sampled token and its sampling log-prob are stored for the policy-gradient loss anyway.",
        ["tracked forward"] = "Counted: bytes of the distinct tensor storages the estimator creates in its forward pass (inputs excluded). TorchSharp keeps every intermediate alive until its DisposeScope ends, so all of it is resident at the end of the forward. Deterministic; a lower bound of the peak.",
        ["gradient"] = "The gradient w.r.t. the policy logits, [N,V] for both: logsumexp makes the Top-k gradient dense as well. In training this buffer exists for the policy-gradient loss anyway. Included in peak RSS, not in tracked forward.",
        ["peak RSS extra"] = "Measured: peak resident set (VmHWM, reset through /proc/self/clear_refs before each run) minus the resident set just before the run, so it covers forward intermediates, backward temporaries and the gradient. Reliable for tensors above glibc's mmap threshold (≤ 32 MiB, e.g. [N,V]); meaningless for tiny problems; CPU on Linux only. Median over the timed repetitions.",
        ["mean KL"] = "Sanity check, not a result: the mean over the N tokens of each per-token estimate ± its standard error (exact KL vs the unbiased Top-k estimate of it, one sampled token per position); the two should agree within a few standard errors.",
        ["not measured"] = "Model forward/backward passes, the LM head, the anchor's forward at rollout (Top-k needs it too, then keeps O(k)), choosing q (top-k of the sampling policy), host/device transfers, and any GPU.",
        ["problem"] = "Synthetic: policy logits 3·N(0,1), anchor logits = policy + 0.5·N(0,1); sampled tokens drawn from the policy (on-policy, s = 1); q = the policy's top-k indices.",
    };

    public static KlBenchReport Run(KlBenchOptions o, Action<string>? progress = null)
    {
        var device = torch.device(o.Device);
        bool rss = device.type == DeviceType.CPU && MemoryProbe.RssAvailable;
        var rows = new List<KlBenchRow>();
        foreach (var v in o.Vocab)
        {
            progress?.Invoke($"|V| = {v}: setting up N = {o.Tokens} tokens, k = {o.K}, {DTypeName(o.DType)}, {device}");
            rows.Add(RunVocab(v, o, device, rss, progress));
        }
        return new KlBenchReport(
            "kl", BenchStats.UtcNow(), device.ToString(), DTypeName(o.DType), o.Tokens, o.K, o.Reps, o.Quick,
            torch.get_num_threads(), Environment.ProcessorCount, BenchStats.Os, BenchStats.TorchSharpVersion, rss, Definitions, rows);
    }

    public static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Float64 => "float64",
        _ => t.ToString(),
    };

    private enum Kind { Exact, Topk }

    /// <summary>The synthetic rollout: full logits for the exact estimator, O(k) precomputed inputs for Top-k.</summary>
    private sealed class Problem
    {
        public required Tensor PolicyLogits { get; init; }   // [N,V], no grad; each run takes a fresh leaf view of it
        public required Tensor AnchorLogits { get; init; }   // [N,V]
        public required Tensor Sampled { get; init; }        // [N] int64
        public required Tensor SamplingLogp { get; init; }   // [N]
        public required Tensor AnchorLogp { get; init; }     // [N]
        public required Tensor Q { get; init; }              // [N,k] int64
        public required Tensor AnchorLogpQ { get; init; }    // [N,k]
        public Tensor[] All => [PolicyLogits, AnchorLogits, Sampled, SamplingLogp, AnchorLogp, Q, AnchorLogpQ];

        public static Problem Create(int vocab, KlBenchOptions o, Device device)
        {
            torch.random.manual_seed(o.Seed + vocab);
            using var setup = NewDisposeScope();
            var policy = (randn(o.Tokens, vocab, dtype: o.DType, device: device) * 3.0).detach();
            var anchor = (policy + randn(o.Tokens, vocab, dtype: o.DType, device: device) * 0.5).detach();
            var sampled = multinomial(policy.softmax(-1), 1).squeeze(1);
            var idx = sampled.unsqueeze(1);
            var samplingLogp = policy.log_softmax(-1).gather(1, idx).squeeze(1);
            var q = policy.topk(o.K, dim: -1).indexes;
            var anchorLogProbs = anchor.log_softmax(-1);
            var p = new Problem
            {
                PolicyLogits = policy,
                AnchorLogits = anchor,
                Sampled = sampled.contiguous(),
                SamplingLogp = samplingLogp.contiguous(),
                AnchorLogp = anchorLogProbs.gather(1, idx).squeeze(1).contiguous(),
                Q = q.contiguous(),
                AnchorLogpQ = anchorLogProbs.gather(1, q).contiguous(),
            };
            setup.MoveToOuter(p.All);
            return p;
        }

        public long StoredBytes(Kind kind) => kind == Kind.Exact
            ? MemoryProbe.Bytes(AnchorLogits)
            : MemoryProbe.Bytes(Q) + MemoryProbe.Bytes(AnchorLogpQ) + MemoryProbe.Bytes(AnchorLogp) + MemoryProbe.Bytes(SamplingLogp) + MemoryProbe.Bytes(Sampled);
    }

    private sealed record Sample(double Ms, long? RssExtra, long Tracked, long GradBytes, double MeanKl, double MeanKlStdErr);

    private static KlBenchRow RunVocab(int vocab, KlBenchOptions o, Device device, bool rss, Action<string>? progress)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Create(vocab, o, device);
        var exact = Estimators.Get(ExactName);
        var topk = Estimators.Get(TopkName);

        // Untimed probe run of each: warms up, counts the tracked forward bytes, reads the mean KL.
        var probe = new Dictionary<Kind, Sample> { [Kind.Exact] = Once(Kind.Exact, p, exact, topk, device, rss, probe: true) };
        probe[Kind.Topk] = Once(Kind.Topk, p, exact, topk, device, rss, probe: true);

        var timed = new Dictionary<Kind, List<Sample>> { [Kind.Exact] = [], [Kind.Topk] = [] };
        for (int r = 0; r < o.Reps; r++)
        {
            var order = r % 2 == 0 ? new[] { Kind.Exact, Kind.Topk } : [Kind.Topk, Kind.Exact];
            foreach (var kind in order) timed[kind].Add(Once(kind, p, exact, topk, device, rss, probe: false));
            progress?.Invoke($"|V| = {vocab}: rep {r + 1}/{o.Reps}: exact {timed[Kind.Exact][^1].Ms:0.0} ms, top-k {timed[Kind.Topk][^1].Ms:0.0} ms");
        }

        KlMeasurement M(Kind kind, string name, string inputs, long perToken)
        {
            var t = timed[kind];
            var ms = t.Select(s => s.Ms).ToList();
            var rssList = t.Where(s => s.RssExtra is not null).Select(s => s.RssExtra!.Value).ToList();
            return new KlMeasurement(name, inputs, BenchStats.Median(ms), ms.DefaultIfEmpty(double.NaN).Min(), ms.DefaultIfEmpty(double.NaN).Max(), ms,
                perToken, p.StoredBytes(kind), probe[kind].Tracked, probe[kind].GradBytes,
                rssList.Count > 0 ? (long)BenchStats.Median(rssList.Select(x => (double)x).ToList()) : null, rssList, probe[kind].MeanKl, probe[kind].MeanKlStdErr);
        }

        var e = M(Kind.Exact, ExactName, "policy logits [N,V] + anchor logits [N,V]", vocab);
        var k = M(Kind.Topk, TopkName, $"policy logits [N,V] + O(k) anchor/sampling log-probs, k = {o.K}", 2L * o.K + 3);
        var ratios = new KlRatios(BenchStats.Ratio(e.TimeMsMedian, k.TimeMsMedian), BenchStats.Ratio(e.StoredInputBytes, k.StoredInputBytes),
            BenchStats.Ratio(e.TrackedForwardBytes, k.TrackedForwardBytes), BenchStats.Ratio(e.PeakRssExtraBytesMedian, k.PeakRssExtraBytesMedian));
        return new KlBenchRow(vocab, e, k, ratios);
    }

    /// <summary>One forward + backward of one estimator. Tensors it creates live in its own scope and are freed at its end.</summary>
    private static Sample Once(Kind kind, Problem p, DivergenceEstimator exact, DivergenceEstimator topk, Device device, bool rss, bool probe)
    {
        using var scope = NewDisposeScope();
        var logits = p.PolicyLogits.detach().requires_grad_(true);   // fresh leaf: no gradient carried over between runs
        long rss0 = 0;
        if (rss) { MemoryProbe.ResetPeak(); rss0 = MemoryProbe.RssBytes(); }
        var sw = Stopwatch.StartNew();
        Tensor kl = kind == Kind.Exact
            // The exact estimator reads only the full logits; the [N] fields are required by KlInputs but unused by it.
            ? exact.Compute(new KlInputs { PolicyLogp = p.SamplingLogp, AnchorLogp = p.AnchorLogp, SamplingLogp = p.SamplingLogp, PolicyLogits = logits, AnchorLogits = p.AnchorLogits }, checkFinite: false)
            : topk.Compute(KlInputs.FromPolicyLogits(logits, p.Sampled, p.SamplingLogp, p.AnchorLogp, p.Q, p.AnchorLogpQ), checkFinite: false);
        long tracked = 0;
        if (probe)
        {
            Sync(device);
            tracked = MemoryProbe.TrackedBytes(scope, [.. p.All, logits]);   // probe runs are untimed
        }
        var loss = kl.mean();
        loss.backward();
        Sync(device);
        sw.Stop();
        long? extra = rss ? MemoryProbe.PeakRssBytes() - rss0 : null;
        var grad = logits.grad ?? throw new InvalidOperationException("no gradient reached the policy logits");
        double mean = double.NaN, se = double.NaN;
        if (probe)
        {
            var v = kl.detach().to_type(ScalarType.Float64);
            mean = v.mean().item<double>();
            se = v.numel() > 1 ? v.std().item<double>() / Math.Sqrt(v.numel()) : double.NaN;
        }
        return new Sample(sw.Elapsed.TotalMilliseconds, extra, tracked, MemoryProbe.Bytes(grad), mean, se);
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }

}

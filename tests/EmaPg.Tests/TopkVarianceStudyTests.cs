using EmaPg.Divergences;
using EmaPg.Studies;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests;

public class TopkVarianceStudyTests
{
    [Theory]
    [InlineData(32000, 0.2)]
    [InlineData(32000, 0.9)]
    [InlineData(500, 0.5)]
    public void BisectionHitsTheTargetTop32Mass(int vocab, double mass)
    {
        using var task = SyntheticTask.Create(vocab, mass, seed: 3, dtype: ScalarType.Float64);
        Assert.InRange(task.AchievedMass, mass - 1e-9, mass + 1e-9);
        Assert.True(task.Scale > 0);
    }

    [Fact]
    public void TopMassIsIncreasingInTheScale()
    {
        using var scope = NewDisposeScope();
        var z = randn(1000, dtype: ScalarType.Float64, generator: new Generator(1));
        double prev = 0;
        foreach (var s in new[] { 0.0, 0.5, 1, 2, 4, 8 })
        {
            double m = TopMass.Of(z * s, 32);
            Assert.True(m >= prev);
            prev = m;
        }
        Assert.Equal(32.0 / 1000, TopMass.Of(z * 0.0, 32), 12);
    }

    [Fact]
    public void RowInputsMatchKlInputsFromLogits()
    {
        // The study's gathered inputs must equal the library's FromLogits on the rows' own logits, values and gradients.
        using var scope = NewDisposeScope();
        using var task = SyntheticTask.Create(50, 0.8, seed: 1, dtype: ScalarType.Float64);
        var q = task.TopK(5);
        var rep = tensor(new long[] { 0, 0, 1, 1, 1 });
        var token = tensor(new long[] { 3, q[0].item<long>(), 7, 8, q[2].item<long>() });
        var w = tensor(new[] { 0.25, 0.75, 0.5, 0.3, 0.2 }, dtype: ScalarType.Float64);
        foreach (var name in new[] { "k4", "truncated-reverse", "topk-reverse", "topk-reverse-paper" })
        {
            var e = Estimators.Get(name);
            var z1 = task.PolicyLogits.unsqueeze(0).expand(2, 50).clone().requires_grad_(true);
            var x1 = BatchGradient.Inputs(z1.log_softmax(1), task.AnchorLogits.log_softmax(0), rep, token, e.Index == IndexSource.None ? null : q);
            var v1 = e.Compute(x1, checkFinite: false);
            var g1 = autograd.grad([(w * v1).sum()], [z1])[0];

            var z2 = task.PolicyLogits.unsqueeze(0).expand(2, 50).clone().requires_grad_(true);
            var rows = z2.index_select(0, rep);
            var x2 = KlInputs.FromLogits(rows, task.AnchorLogits.unsqueeze(0).expand(5, 50), rows.detach().log_softmax(1).gather(1, token.unsqueeze(1)).squeeze(1), token,
                e.Index == IndexSource.None ? null : q.unsqueeze(0).expand(5, 5).contiguous());
            var v2 = e.Compute(x2, checkFinite: false);
            var g2 = autograd.grad([(w * v2).sum()], [z2])[0];
            Assert.True(allclose(v1, v2, 1e-12, 1e-12), name);
            Assert.True(allclose(g1, g2, 1e-12, 1e-12), name);
        }
    }

    /// <summary>Per-token gradients of an estimator for every token p, [V, V], by autograd on FromLogits rows.</summary>
    private static Tensor PerTokenGradients(SyntheticTask task, DivergenceEstimator e, Tensor? q)
    {
        int v = task.Vocab;
        var z = task.PolicyLogits.unsqueeze(0).expand(v, v).clone().requires_grad_(true);
        var sampled = arange(v, dtype: ScalarType.Int64);
        var x = KlInputs.FromLogits(z, task.AnchorLogits.unsqueeze(0).expand(v, v), z.detach().log_softmax(1).gather(1, sampled.unsqueeze(1)).squeeze(1), sampled,
            q is null ? null : q.unsqueeze(0).expand(v, q.shape[0]).contiguous());
        return autograd.grad([e.Compute(x, checkFinite: false).sum()], [z])[0];
    }

    [Fact]
    public void SampledAndTopkScaleLikeOneOverSqrtBAndTruncatedSitsOnItsExactBias()
    {
        using var scope = NewDisposeScope();
        using var task = SyntheticTask.Create(128, 0.6, seed: 5, dtype: ScalarType.Float64);
        var g = BatchGradient.TrueGradient(task);
        var cdf = BatchGradient.Cdf(task);
        double gNorm = g.norm().item<double>();
        var pi = task.PolicyLogits.softmax(0);
        var q = task.TopK(8);
        var config = new TopkVarianceConfig { Tasks = 1, McRelativeError = 0.02, MinReps = 64, MaxReps = 100_000, DType = ScalarType.Float64 };
        int[] batches = [1, 16, 256];

        foreach (var (name, useQ) in new[] { ("k4", false), ("topk-reverse", true) })
        {
            var e = Estimators.Get(name);
            // Exact one-token MSE: E_p‖∇K̂(p) − ∇KL‖² by enumerating p; an unbiased B-sample mean has MSE/B.
            var per = PerTokenGradients(task, e, useQ ? q : null);
            double mse1 = (pi * (per - g.unsqueeze(0)).square().sum(1)).sum().item<double>();
            double bias = ((pi.unsqueeze(1) * per).sum(dim: 0) - g).norm().item<double>();
            Assert.True(bias < 1e-10 * gNorm, $"{name} is unbiased: bias {bias}, |g| {gNorm}, mse1 {mse1}");
            var measured = new List<double>();
            foreach (var b in batches)
            {
                var mc = TopkVarianceStudy.Measure(task, e, useQ ? q : null, b, g, cdf, new Generator((ulong)(17 + b)), config);
                double want = Math.Sqrt(mse1 / b) / gNorm, got = mc.Rmse / gNorm;
                Assert.True(Math.Abs(got / want - 1) < 0.08, $"{name} B={b}: measured rel-RMSE {got} vs exact {want} ({mc.Count} reps)");
                measured.Add(got);
            }
            // 1/√B: each 16× more tokens divides the error by 4.
            Assert.InRange(measured[0] / measured[1], 4 * 0.88, 4 * 1.12);
            Assert.InRange(measured[1] / measured[2], 4 * 0.88, 4 * 1.12);
        }

        // Truncated: deterministic, so every B gives exactly its bias ‖∇KL_trun − ∇KL‖.
        var tr = Estimators.Get("truncated-reverse");
        var perTr = PerTokenGradients(task, tr, q);
        double exactBias = (perTr[0] - g).norm().item<double>() / gNorm;
        Assert.True(exactBias > 0.01);
        foreach (var b in batches.Append(4096))
        {
            var mc = TopkVarianceStudy.Measure(task, tr, q, b, g, cdf, new Generator(3), config);
            Assert.Equal(exactBias, mc.Rmse / gNorm, 10);
            Assert.True(mc.RelativeStandardError < 1e-6);
        }
    }

    [Fact]
    public void CriticalSampleSizeIsWhereTopkStaysBelowTruncated()
    {
        VarianceCell C(int k, int b, string e, double v) => new(0.5, k, b, e, v, 0, 1, 1, 1);
        var cells = new List<VarianceCell>
        {
            C(4, 1, "topk", 5), C(4, 2, "topk", 1), C(4, 4, "topk", 3), C(4, 8, "topk", 0.5),
            C(4, 1, "truncated", 2), C(4, 2, "truncated", 2), C(4, 4, "truncated", 2), C(4, 8, "truncated", 2),
            C(8, 1, "topk", 5), C(8, 2, "topk", 4), C(8, 1, "truncated", 1), C(8, 2, "truncated", 1),
        };
        var crit = CriticalSampleSize.FromCells(cells, [0.5], [4, 8]);
        Assert.Equal(8, crit.Single(c => c.K == 4).Batch);
        Assert.Null(crit.Single(c => c.K == 8).Batch);
    }

    [Fact]
    public void QuickGridRunsThroughTheCliAndWritesTheFiles()
    {
        var dir = Path.Combine(Path.GetTempPath(), "emapg-tv-" + Guid.NewGuid().ToString("N"));
        try
        {
            int rc = EmaPg.Cli.Program.Main(["study", "topk-variance", "--quick", "--out", dir]);
            Assert.Equal(0, rc);
            var lines = File.ReadAllLines(Path.Combine(dir, "topk-variance.csv"));
            Assert.Equal("mass,k,batch,estimator,rel_rmse", lines[0]);
            var q = TopkVarianceConfig.Quick;
            // sampled once per (mass, B) at k = 0; the three k-estimators per (mass, k, B).
            Assert.Equal(q.Masses.Count * q.Batches.Count * (1 + 3 * q.Ks.Count), lines.Length - 1);
            Assert.All(lines.Skip(1), l => Assert.True(double.Parse(l.Split(',')[4], System.Globalization.CultureInfo.InvariantCulture) > 0));
            var crit = File.ReadAllLines(Path.Combine(dir, "critical-sample-size.csv"));
            Assert.Equal("mass,k,critical_batch", crit[0]);
            Assert.Equal(q.Masses.Count * q.Ks.Count, crit.Length - 1);
            Assert.True(new FileInfo(Path.Combine(dir, "topk-variance.png")).Length > 1000);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void BadOptionsAreUserErrorsNamingTheOption()
    {
        var err = Console.Error;
        var sw = new StringWriter();
        Console.SetError(sw);
        try
        {
            Assert.Equal(2, EmaPg.Cli.Program.Main(["study", "topk-variance", "--mass", "0.2,1.5"]));
            Assert.Contains("--mass", sw.ToString());
            Assert.Equal(2, EmaPg.Cli.Program.Main(["study", "topk-variance", "--k", "0"]));
            Assert.Contains("--k", sw.ToString());
        }
        finally
        {
            Console.SetError(err);
        }
    }
}

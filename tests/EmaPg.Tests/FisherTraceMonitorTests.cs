using EmaPg.Stability;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests;

public class FisherTraceMonitorTests
{
    /// <summary>A categorical policy softmax(z) over V tokens (or a product of two: sequences of length 2).</summary>
    private sealed class Categorical : nn.Module
    {
        public readonly TorchSharp.Modules.Parameter Z1, Z2;
        public Categorical(int v1, int v2, int seed) : base("categorical")
        {
            var g = new Generator((ulong)seed);
            Z1 = new TorchSharp.Modules.Parameter(randn(v1, dtype: ScalarType.Float64, generator: g) * 1.5);
            Z2 = new TorchSharp.Modules.Parameter(randn(v2, dtype: ScalarType.Float64, generator: g));
            RegisterComponents();
        }
    }

    [Fact]
    public void TraceOfACategoricalPolicyMatchesOneMinusSumOfSquares()
    {
        using var scope = NewDisposeScope();
        var m = new Categorical(12, 1, seed: 3);
        m.Z2.requires_grad_(false);
        var pi = m.Z1.detach().softmax(0);
        // Every token y is one "sequence", weighted by π(y): the exact expectation E_y‖∇_z log π(y)‖².
        var est = FisherTrace.Estimate(m, () => m.Z1.log_softmax(0), pi.data<double>().ToArray());
        double closed = 1 - pi.square().sum().item<double>();
        Assert.Equal(closed, est.Trace, 12);
        // And it bounds λ_max of F = diag(π) − ππᵀ.
        var f = diag(pi) - pi.outer(pi);
        double lmax = linalg.eigvalsh(f).max().item<double>();
        Assert.True(lmax <= est.LambdaMaxUpperBound + 1e-12);
        Assert.True(lmax > 0);
    }

    [Fact]
    public void TraceOfATwoTokenSequenceModelIsTheSumOfPerPositionTraces()
    {
        using var scope = NewDisposeScope();
        var m = new Categorical(5, 7, seed: 1);
        var p1 = m.Z1.detach().softmax(0);
        var p2 = m.Z2.detach().softmax(0);
        // All 35 sequences (y1, y2): log π(y) = log π1(y1) + log π2(y2).
        var y1 = arange(5, dtype: ScalarType.Int64).repeat_interleave(7);
        var y2 = arange(7, dtype: ScalarType.Int64).repeat(5);
        var w = (p1.index_select(0, y1) * p2.index_select(0, y2)).data<double>().ToArray();
        var est = FisherTrace.Estimate(m, () => m.Z1.log_softmax(0).index_select(0, y1) + m.Z2.log_softmax(0).index_select(0, y2), w);
        double closed = (1 - p1.square().sum().item<double>()) + (1 - p2.square().sum().item<double>());
        Assert.Equal(closed, est.Trace, 12);
    }

    [Fact]
    public void SampledSequencesGiveAnUnbiasedEstimateWithAStandardError()
    {
        using var scope = NewDisposeScope();
        var m = new Categorical(20, 1, seed: 2);
        m.Z2.requires_grad_(false);
        var pi = m.Z1.detach().softmax(0);
        var ys = multinomial(pi, 4000, replacement: true, generator: new Generator(9));
        var est = FisherTrace.Estimate(m, () => m.Z1.log_softmax(0).index_select(0, ys));
        double closed = 1 - pi.square().sum().item<double>();
        Assert.Equal(4000, est.Sequences);
        Assert.True(est.StandardError > 0);
        Assert.InRange(est.Trace, closed - 4 * est.StandardError, closed + 4 * est.StandardError);
    }

    [Fact]
    public void GradientNormsAreSquaredAndAveraged()
    {
        var est = FisherTrace.FromGradientNorms([1.0, 2.0, 3.0]);
        Assert.Equal(14.0 / 3, est.Trace, 12);
        Assert.Equal(2.5, FisherTrace.FromGradientNorms([1.0, 2.0, 3.0], [1, 1, 0]).Trace, 12);
        Assert.Throws<ArgumentException>(() => FisherTrace.FromSquaredNorms([]));
        Assert.Throws<ArgumentException>(() => FisherTrace.FromSquaredNorms([-1.0]));
    }

    [Theory]
    [InlineData(0.5, StabilityRegime.Monotone)]
    [InlineData(0.9, StabilityRegime.Monotone)]
    [InlineData(1.2, StabilityRegime.Oscillatory)]
    [InlineData(1.9, StabilityRegime.Unstable)]
    [InlineData(3.0, StabilityRegime.Unstable)]
    public void MarginIsComparedWithEtaAndOnePlusEta(double margin, StabilityRegime regime)
    {
        // α = 0.1, λ̂ = 2: β = margin / 0.2.
        var m = StabilityMargin.Compute(0.1, margin / 0.2, 0.9, 2.0);
        Assert.Equal(margin, m.Margin, 12);
        Assert.Equal(regime, m.Regime);
        Assert.Equal(1.9 / 0.2, m.MaxStableBeta, 12);
    }
}

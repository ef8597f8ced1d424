using EmaPg.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Tests.Optim;

public class AdamWTests
{
    private static (Parameter W, Parameter B) MakeParams()
    {
        using var gen = new Generator(11, CPU);
        var w = new Parameter(randn([3, 4], dtype: ScalarType.Float64, generator: gen));
        var b = new Parameter(randn([3], dtype: ScalarType.Float64, generator: gen));
        return (w, b);
    }

    private static Tensor Loss(Parameter w, Parameter b, int step)
    {
        // A different batch each step so the moments see varying gradients.
        using var gen = new Generator((ulong)(100 + step), CPU);
        var x = randn([5, 4], dtype: ScalarType.Float64, generator: gen);
        var y = randn([5, 3], dtype: ScalarType.Float64, generator: gen);
        return (x.matmul(w.t()) + b - y).pow(2).mean();
    }

    [Fact]
    public void MatchesTorchAdamWOverSeveralSteps()
    {
        using var scope = NewDisposeScope();
        var (w1, b1) = MakeParams();
        var (w2, b2) = MakeParams();
        const double lr = 0.05, beta1 = 0.8, beta2 = 0.95, eps = 1e-6, wd = 0.1;
        using var mine = new EmaPg.Optim.AdamW([w1, b1], lr, beta1, beta2, eps, wd);
        var reference = optim.AdamW([w2, b2], lr, beta1, beta2, eps, wd);
        for (int step = 0; step < 6; step++)
        {
            mine.ZeroGrad();
            Loss(w1, b1, step).backward();
            mine.Step();
            reference.zero_grad();
            Loss(w2, b2, step).backward();
            reference.step();
            double diff = Math.Max((w1 - w2).abs().max().item<double>(), (b1 - b2).abs().max().item<double>());
            Assert.True(diff < 1e-12, $"step {step}: max diff {diff}");
        }
        Assert.Equal(6, mine.StepCount);
        Assert.False(w1.eq(MakeParams().W).all().item<bool>(), "parameters should have moved");
    }

    [Fact]
    public void RejectsBadHyperparametersWithNamedRanges()
    {
        var (w, _) = MakeParams();
        var e = Assert.Throws<UserError>(() => new EmaPg.Optim.AdamW([w], beta2: 1.0));
        Assert.Contains("beta2", e.Message);
    }
}

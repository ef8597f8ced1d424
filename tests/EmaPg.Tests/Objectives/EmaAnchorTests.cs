using EmaPg.Anchor;
using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Objectives;

public class EmaAnchorTests
{
    private sealed class Net : nn.Module
    {
        public readonly TorchSharp.Modules.Linear fc;
        public readonly TorchSharp.Modules.BatchNorm1d bn;
        public Net() : base("net") { fc = nn.Linear(3, 2); bn = nn.BatchNorm1d(2); RegisterComponents(); }
    }

    private static Net Make(double fill)
    {
        var n = new Net();
        using var _ = no_grad();
        foreach (var (_, p) in n.named_parameters()) p.fill_(fill);
        foreach (var (_, b) in n.named_buffers()) if (b.is_floating_point()) b.fill_(fill);
        return n;
    }

    [Fact]
    public void UpdateIsTheExponentialMovingAverageOverParametersAndBuffers()
    {
        using var scope = NewDisposeScope();
        var anchor = Make(1.0);
        var policy = Make(3.0);
        var before = anchor.fc.weight!;
        EmaAnchor.Update(anchor, policy, 0.9);
        Assert.Same(before, anchor.fc.weight!);   // in place: the same tensor object is mutated
        Assert.All(anchor.fc.weight!.data<float>().ToArray(), v => Assert.Equal(1.2f, v, 5));
        Assert.All(anchor.bn.running_mean!.data<float>().ToArray(), v => Assert.Equal(1.2f, v, 5));
        Assert.All(policy.fc.weight!.data<float>().ToArray(), v => Assert.Equal(3f, v));
        Assert.Equal(Math.Sqrt(12 * 1.8 * 1.8), EmaAnchor.Lag(anchor, policy), 4);   // fc 6+2 and bn affine 2+2 parameters, each 3 − 1.2 apart
    }

    [Fact]
    public void EtaOneIsAFixedReferenceAndEtaZeroAHardReset()
    {
        using var scope = NewDisposeScope();
        var anchor = Make(1.0);
        var policy = Make(3.0);
        EmaAnchor.Update(anchor, policy, 1.0);
        Assert.All(anchor.fc.bias!.data<float>().ToArray(), v => Assert.Equal(1f, v));
        EmaAnchor.Update(anchor, policy, 0.0);
        Assert.All(anchor.fc.bias!.data<float>().ToArray(), v => Assert.Equal(3f, v));
        Assert.Equal(0.0, EmaAnchor.Lag(anchor, policy));
    }

    [Fact]
    public void UpdatesHappenEveryTEmaIterations()
    {
        using var scope = NewDisposeScope();
        var ema = new EmaAnchor(0.5, 3);
        var anchor = Make(0.0);
        var policy = Make(8.0);
        var updated = Enumerable.Range(1, 7).Select(t => ema.MaybeUpdate(anchor, policy, t)).ToArray();
        Assert.Equal(new[] { false, false, true, false, false, true, false }, updated);
        Assert.All(anchor.fc.weight!.data<float>().ToArray(), v => Assert.Equal(6f, v, 5));   // 0 → 4 → 6
    }

    [Fact]
    public void BadEtaOrPeriodIsAClearError()
    {
        Assert.Contains("ema_eta must be in [0, 1]", Assert.Throws<UserError>(() => new EmaAnchor(1.5, 10)).Message);
        Assert.Contains("ema_period", Assert.Throws<UserError>(() => new EmaAnchor(0.9, 0)).Message);
    }
}

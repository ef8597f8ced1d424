using System.Collections;
using System.Reflection;
using EmaPg.Heads;
using static TorchSharp.torch;

namespace EmaPg.Tests.Heads;

[CollectionDefinition("autograd-nodes", DisableParallelization = true)]
public class AutogradNodesCollection;

/// <summary>
/// The fused loss's graph dies with the step's dispose scope, not at the next GC: its node keeps ∂W [|V|, H] saved, and a
/// cold start that left one node per step to the finalizer grew by a ∂W per step (13 GB by step 330 at |V| = 151936).
/// TorchSharp roots every custom-function node in a static list until libtorch destroys it; the test reads that list
/// (TorchSharp 0.107's internals: a rename fails the test loudly rather than passing it), alone, so no other test's
/// nodes are counted.
/// </summary>
[Collection("autograd-nodes")]
public class FusedLossLifetimeTests
{
    private static int AliveNodes()
    {
        var node = typeof(TorchSharp.torch).Assembly.GetTypes().Single(t => t.FullName == "TorchSharp.torch+autograd+Node");
        var list = node.GetField("AliveNodes", BindingFlags.NonPublic | BindingFlags.Static)
            ?? throw new InvalidOperationException("TorchSharp's Node.AliveNodes is gone: update this test.");
        lock (list.GetValue(null)!) return ((ICollection)list.GetValue(null)!).Count;
    }

    [Fact]
    public void NoNodeOutlivesTheStepsScopeWithoutAGarbageCollection()
    {
        var w = nn.Parameter(randn(50, 8, dtype: ScalarType.Float64));
        var hp = nn.Parameter(randn(12, 8, dtype: ScalarType.Float64));
        var targets = randint(0, 50, [12]);
        int before = AliveNodes();
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            var (loss, _) = TokenHead.FusedLoss(hp * 1.0, w, targets, (rows, start, count) => -rows.LogpTarget.sum(), rowChunk: 5);
            Assert.Equal(before + 1, AliveNodes());
            loss.backward();
        }
        Assert.Equal(before, AliveNodes());
        Assert.True(w.grad!.abs().sum().item<double>() > 0);
    }

    /// <summary>The same for the four-GEMM head (GSPO's path), with outputs the loss does not read (their gradients arrive
    /// undefined and count as zero): the gradient equals the unfused head's, and no node outlives the step.</summary>
    [Fact]
    public void TheFourGemmHeadsGraphAlsoDiesWithTheScopeAndUnreadOutputsCountAsZero()
    {
        var w = nn.Parameter(randn(50, 8, dtype: ScalarType.Float64));
        var hp = nn.Parameter(randn(12, 8, dtype: ScalarType.Float64));
        var targets = randint(0, 50, [12]);
        var q = randint(0, 50, [12, 3]);
        Tensor Reference()
        {
            using var scope = NewDisposeScope();
            var o = TokenHead.Unfused(hp * 1.0, w, targets, q);
            var g = autograd.grad([-(o.LogpTarget.sum())], [w])[0];
            return g.MoveToOuterDisposeScope();
        }
        var want = Reference();
        int before = AliveNodes();
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            w.grad?.zero_();
            var o = TokenHead.Fused(hp * 1.0, w, targets, q, topK: 4, chunkSize: 7);
            Assert.Equal(before + 1, AliveNodes());
            (-(o.LogpTarget.sum())).backward();   // LogZ, entropy, LogpQ and the top-k are not read
            Assert.True((w.grad! - want).abs().max().item<double>() < 1e-12);
        }
        Assert.Equal(before, AliveNodes());
    }
}

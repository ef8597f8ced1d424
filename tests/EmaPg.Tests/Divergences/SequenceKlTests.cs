using EmaPg.Divergences;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests.Divergences;

/// <summary>
/// Sequence-level KL on a two-step autoregressive policy over a 4-token vocabulary, every one of the 16
/// sequences enumerated: the score-function surrogate's expected gradient equals the gradient of the exact
/// sequence KL (eq. 12), and the per-sequence estimate's expectation equals its value.
/// </summary>
public class SequenceKlTests
{
    [Fact]
    public void SurrogateGradientIsTheExactSequenceKlGradient()
    {
        using var scope = NewDisposeScope();
        const int V = 4;
        var gen = new Random(5);
        double[] R(int n) => Enumerable.Range(0, n).Select(_ => gen.NextDouble() * 2 - 1).ToArray();
        // Step 0 logits [V]; step 1 logits depend on the first token: [V, V].
        var a0 = tensor(R(V), dtype: float64).requires_grad_(true);
        var a1 = tensor(R(V * V), dtype: float64).reshape(V, V).requires_grad_(true);
        var b0 = tensor(R(V), dtype: float64);
        var b1 = tensor(R(V * V), dtype: float64).reshape(V, V);

        var y0 = arange(V, dtype: int64).repeat_interleave(V);   // [16]
        var y1 = arange(V, dtype: int64).repeat(V);
        Tensor LogpSeq(Tensor l0, Tensor l1) => stack([l0.log_softmax(0)[y0], l1.log_softmax(1)[y0, y1]], 1); // [16, 2]
        var lp = LogpSeq(a0, a1);
        var la = LogpSeq(b0, b1);
        var mask = ones(16, 2, dtype: float64);
        var prob = lp.sum(1).exp().detach();

        // Exact sequence KL and its autograd gradient (differentiating the probabilities too).
        var exact = (lp.sum(1).exp() * (lp.sum(1) - la.sum(1))).sum();
        var gExact = autograd.grad([exact], [a0, a1], retain_graph: true);

        var est = SequenceKl.PerSequence(lp, la, mask);
        Assert.Equal(exact.item<double>(), (prob * est).sum().item<double>(), 12);

        var sur = (prob * SequenceKl.Surrogate(lp, la, mask)).sum();
        var gSur = autograd.grad([sur], [a0, a1]);
        for (int i = 0; i < 2; i++)
        {
            var diff = (gSur[i] - gExact[i]).norm().item<double>() / gExact[i].norm().item<double>();
            Assert.True(diff < 1e-9, $"parameter {i}: rel. err {diff:E2}");
        }

        var pen = SequenceKl.PenalisedReward(ones(16, dtype: float64), lp, la, mask, 0.1);
        Assert.Equal(1 - 0.1 * est[3].item<double>(), pen[3].item<double>(), 12);
    }
}

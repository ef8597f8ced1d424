using EmaPg.Sampling;
using EmaPg.Tests.Model;
using static TorchSharp.torch;

namespace EmaPg.Tests.Sampling;

/// <summary>
/// The scorer's fused path with gradients on, as the supervised cold start uses it: its outputs leave the scorer's scope
/// before backward runs, and no index set is given (the function's unrequested outputs must still be alive for autograd).
/// </summary>
public sealed class ScorerFusedGradientTests
{
    [Fact]
    public void Fused_token_log_probs_backpropagate_after_the_scorer_returns_and_equal_the_full_logit_path()
    {
        using var model = TinyModels.Float64();
        var gen = new TorchSharp.torch.Generator(5);
        using var seq = randint(0, model.Config.VocabSize, [3, 7], dtype: ScalarType.Int64, generator: gen);
        using var attn = ones_like(seq);
        var weights = rand([3, 4], dtype: ScalarType.Float64, generator: gen);

        Dictionary<string, Tensor> Grads(bool fused)
        {
            foreach (var p in model.parameters()) p.grad = null;
            using var score = Scorer.Score(model, seq, attn, promptLength: 3, fused: fused);
            (score.LogProbs * weights).sum().backward();
            return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }

        var fused = Grads(fused: true);
        var full = Grads(fused: false);
        foreach (var (name, g) in full)
            Assert.True(fused[name].allclose(g, rtol: 1e-10, atol: 1e-12), $"{name}: max |Δ| = {(fused[name] - g).abs().max().item<double>()}");
    }
}

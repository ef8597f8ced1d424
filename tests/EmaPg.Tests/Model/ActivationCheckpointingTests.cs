using EmaPg.Heads;
using EmaPg.Model;
using static TorchSharp.torch;

namespace EmaPg.Tests.Model;

public class ActivationCheckpointingTests
{
    /// <summary>Loss through the whole model and the fused head: Σ log π(target) + 0.3·Σ entropy over the real tokens.</summary>
    private static (Tensor Loss, Dictionary<string, Tensor> Grads) LossAndGrads(DecoderLM model, Tensor ids, Tensor mask)
    {
        foreach (var p in model.parameters()) p.grad = null;
        var hidden = model.HiddenStates(ids, mask);
        long b = ids.shape[0], t = ids.shape[1];
        var flat = hidden.reshape(b * t, hidden.shape[2]);
        var targets = ids.roll(-1, 1).reshape(-1);
        var head = TokenHead.Fused(flat, model.LmHeadWeight, targets, chunkSize: 5);
        var m = mask.reshape(-1).to_type(ScalarType.Float64);
        var loss = ((head.LogpTarget + 0.3 * head.Entropy) * m).sum();
        loss.backward();
        return (loss.detach(), model.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter.grad!.clone()));
    }

    [Theory]
    [InlineData(true, null)]
    [InlineData(false, null)]
    [InlineData(true, "qwen3")]
    [InlineData(false, "llama")]
    public void GradientsEqualThoseWithoutCheckpointing(bool tied, string? modelType)
    {
        var config = TinyModels.Config(tied) with { NumHiddenLayers = 3, ModelType = modelType };
        using var model = new DecoderLM(config, CPU, ScalarType.Float64, seed: 7);
        var gen = new TorchSharp.torch.Generator(11, CPU);
        var ids = randint(0, config.VocabSize, [3, 9], generator: gen, dtype: ScalarType.Int64);
        // Left padding on one row, so the mask and the derived positions go through the recomputation too.
        var mask = ones(3, 9, dtype: ScalarType.Int64);
        mask[1, ..3] = zeros(3, dtype: ScalarType.Int64);

        var (plainLoss, plain) = LossAndGrads(model, ids, mask);
        model.ActivationCheckpointing = true;
        var (ckptLoss, ckpt) = LossAndGrads(model, ids, mask);

        Assert.Equal(plainLoss.item<double>(), ckptLoss.item<double>(), 12);
        Assert.Equal(plain.Keys.Order(), ckpt.Keys.Order());
        foreach (var (name, g) in plain)
        {
            Assert.True(g.abs().max().item<double>() > 0, $"{name}: zero gradient, the comparison would be vacuous");
            double rel = ((ckpt[name] - g).abs().max() / g.abs().max()).item<double>();
            Assert.True(rel < 1e-12, $"{name}: max relative difference {rel:g3}");
        }
    }

    [Fact]
    public void BackwardRecomputesTheLayersFromTheirInputs()
    {
        // Changing a layer's weights between forward and backward changes the checkpointed gradient of what lies below
        // that layer (the recomputation sees the new weights), while the plain graph refuses: it saved the old weights.
        var config = TinyModels.Config() with { NumHiddenLayers = 2 };
        using var model = new DecoderLM(config, CPU, ScalarType.Float64, seed: 3);
        var ids = tensor(new long[,] { { 1, 4, 2, 7, 3 } });
        var w = model.named_parameters().Single(kv => kv.name == "model.layers.1.mlp.up_proj.weight").parameter;

        Tensor GradOfFirstLayer(bool checkpoint, bool perturb)
        {
            foreach (var p in model.parameters()) p.grad = null;
            model.ActivationCheckpointing = checkpoint;
            var loss = model.HiddenStates(ids).pow(2).sum();
            if (perturb) using (no_grad()) w.mul_(2.0);
            loss.backward();
            if (perturb) using (no_grad()) w.div_(2.0);
            return model.named_parameters().Single(kv => kv.name == "model.layers.0.mlp.down_proj.weight").parameter.grad!.clone();
        }

        var reference = GradOfFirstLayer(checkpoint: true, perturb: false);
        var perturbed = GradOfFirstLayer(checkpoint: true, perturb: true);
        Assert.True((perturbed - reference).abs().max().item<double>() > 1e-6);
        Assert.ThrowsAny<Exception>(() => GradOfFirstLayer(checkpoint: false, perturb: true));
        if (w.grad is not null) w.grad = null;
    }
}

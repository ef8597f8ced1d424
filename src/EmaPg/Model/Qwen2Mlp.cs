using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) ⊙ up(x)); biases only where Llama's mlp_bias asks for them.</summary>
public sealed class Qwen2Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear _gate, _up, _down;

    public Qwen2Mlp(ModelConfig c, Device device, ScalarType dtype) : base(nameof(Qwen2Mlp))
    {
        _gate = nn.Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.Features.MlpBias, device: device, dtype: dtype);
        _up = nn.Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.Features.MlpBias, device: device, dtype: dtype);
        _down = nn.Linear(c.IntermediateSize, c.HiddenSize, hasBias: c.Features.MlpBias, device: device, dtype: dtype);
        register_module("gate_proj", _gate);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _down.forward(nn.functional.silu(_gate.forward(x)) * _up.forward(x)).MoveToOuterDisposeScope();
    }
}

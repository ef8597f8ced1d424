using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EmaPg.Model;

/// <summary>
/// Qwen2RMSNorm: x / sqrt(mean(x²) + eps) · weight, no bias, no mean subtraction. Written by hand (not
/// nn.RMSNorm) so the parameter is called exactly <c>weight</c> and the reduction runs in at least
/// float32 even if activations are ever kept in a half type, as HF does.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly double _eps;

    public RmsNorm(long size, double eps, Device device, ScalarType dtype) : base(nameof(RmsNorm))
    {
        _eps = eps;
        register_parameter("weight", new Parameter(ones(size, dtype: dtype, device: device)));
    }

    // Looked up by name rather than cached in a field: Module.to() may swap the tensor behind the name.
    public Parameter Weight => get_parameter("weight")!;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var dtype = x.dtype;
        var xf = dtype is ScalarType.Float16 or ScalarType.BFloat16 ? x.to_type(ScalarType.Float32) : x;
        var normed = xf * xf.pow(2).mean([-1L], keepdim: true).add(_eps).rsqrt();
        return (normed.to_type(dtype) * Weight).MoveToOuterDisposeScope();
    }
}

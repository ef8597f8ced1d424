using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Tests;

public class TorchSharpLoadTests
{
    [Fact]
    public void NativeLibraryLoadsAndAutogradComputesAGradient()
    {
        // d/dx sum(x^3) = 3x^2: proves libtorch is loaded (including the GLIBCXX patch) and autograd runs.
        using var scope = NewDisposeScope();
        var x = tensor(new double[] { 1.0, -2.0, 0.5 }, requires_grad: true);
        var y = x.pow(3).sum();
        y.backward();
        var g = x.grad!.data<double>().ToArray();
        Assert.Equal(new[] { 3.0, 12.0, 0.75 }, g);
    }
}

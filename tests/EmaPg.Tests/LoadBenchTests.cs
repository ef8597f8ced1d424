using EmaPg.Bench;
using EmaPg.Model.HuggingFace;
using EmaPg.Tests.Model.HuggingFace;

namespace EmaPg.Tests;

/// <summary>`emapg bench load` on a fixture checkpoint: what the report counts. Never asserts on time.</summary>
public class LoadBenchTests
{
    [Theory]
    [InlineData(null, 2)]     // stored BF16: 2 bytes per parameter
    [InlineData("f32", 4)]
    public void Report_counts_the_loaded_model_and_its_largest_tensor(string? dtype, int bytesPerParameter)
    {
        var dir = HfFixtures.ModelDir("qwen2-untied-bf16");
        var rep = LoadBench.Run(new LoadBenchOptions { Model = dir, Reps = 2, DType = dtype });
        var info = HfModelInfo.Read(dir);
        Assert.Equal(info.Parameters, rep.Parameters);
        Assert.Equal(info.Bytes, rep.FileBytes);
        Assert.Equal(rep.Parameters * bytesPerParameter, rep.ModelBytes);
        Assert.Equal(256L * 64 * bytesPerParameter, rep.LargestTensorBytes);   // embedding = LM head = [256, 64]
        Assert.Equal(2, rep.Seconds.Count);
        Assert.Equal(bytesPerParameter == 2 ? "bfloat16" : "float32", rep.DType);
        Assert.Equal(rep.PeakRssExtraBytes is not null, rep.OverheadBytesMedian is not null);
    }
}

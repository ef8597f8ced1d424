using System.Diagnostics;
using EmaPg.Common;
using EmaPg.Model.HuggingFace;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Bench;

public sealed record LoadBenchOptions
{
    public required string Model { get; init; }
    /// <summary>Loads timed; medians are reported.</summary>
    public int Reps { get; init; } = 3;
    /// <summary>bf16 | f32 | f16, or null for the checkpoint's torch_dtype.</summary>
    public string? DType { get; init; }
}

/// <param name="ModelBytes">bytes of the loaded parameters (in the load dtype)</param>
/// <param name="LargestTensorBytes">bytes of the largest parameter (in the load dtype)</param>
/// <param name="PeakRssExtraBytes">per load, peak RSS above the pre-load RSS (see <see cref="MemoryProbe"/>)</param>
/// <param name="OverheadBytesMedian">median of peak RSS extra − model bytes: what loading needed beyond the model itself</param>
public sealed record LoadBenchReport(
    string Benchmark,
    string Date,
    string Model,
    string DType,
    long Parameters,
    long ModelBytes,
    long LargestTensorBytes,
    long FileBytes,
    IReadOnlyList<double> Seconds,
    double SecondsMedian,
    IReadOnlyList<long>? PeakRssExtraBytes,
    long? OverheadBytesMedian,
    double? OverheadOverLargestTensor,
    int ProcessorCount,
    string Os,
    string TorchSharp);

/// <summary>
/// `emapg bench load`: time and peak memory of <see cref="HfCheckpoint.Load"/> on a model folder. The loader
/// is meant to need no more than about one extra copy of the largest tensor beyond the model; the report
/// gives that overhead in bytes and as a multiple of the largest tensor.
/// </summary>
public static class LoadBench
{
    public static LoadBenchReport Run(LoadBenchOptions o, Action<string>? progress = null)
    {
        Check.Range("--reps", o.Reps, 1, 100);
        ScalarType? dtype = o.DType is null ? null : HfConfig.ParseDTypeName(o.DType, "--dtype");
        var info = HfModelInfo.Read(o.Model);
        var seconds = new List<double>();
        var peaks = new List<long>();
        long modelBytes = 0, largest = 0, parameters = 0;
        string loadedDType = "";
        for (int r = 0; r < o.Reps; r++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            if (MemoryProbe.RssAvailable) MemoryProbe.ResetPeak();
            long before = MemoryProbe.RssAvailable ? MemoryProbe.RssBytes() : 0;
            var sw = Stopwatch.StartNew();
            using (var m = HfCheckpoint.Load(o.Model, dtype))
            {
                sw.Stop();
                if (MemoryProbe.RssAvailable) peaks.Add(MemoryProbe.PeakRssBytes() - before);
                var ps = m.Model.parameters().ToList();
                modelBytes = ps.Sum(p => p.numel() * p.element_size());
                largest = ps.Max(p => p.numel() * p.element_size());
                parameters = ps.Sum(p => p.numel());
                loadedDType = HfConfig.DTypeName(m.Model.DType);
            }
            seconds.Add(sw.Elapsed.TotalSeconds);
            progress?.Invoke($"load {r + 1}/{o.Reps}: {sw.Elapsed.TotalSeconds:0.00} s" + (peaks.Count > r ? $", peak RSS +{peaks[r] / 1048576.0:0} MiB" : ""));
        }
        long? overhead = peaks.Count > 0 ? (long)BenchStats.Median(peaks.Select(p => (double)(p - modelBytes)).ToList()) : null;
        return new LoadBenchReport("load", BenchStats.UtcNow(), o.Model, loadedDType, parameters, modelBytes, largest, info.Bytes,
            seconds, BenchStats.Median(seconds), peaks.Count > 0 ? peaks : null, overhead,
            overhead is { } ov ? (double)ov / largest : null,
            Environment.ProcessorCount, BenchStats.Os, BenchStats.TorchSharpVersion);
    }
}

using System.Runtime.InteropServices;
using TorchSharp;

namespace EmaPg.Common;

/// <summary>
/// The facts that decide whether two runs can give bit-identical numbers: the processor and the SIMD level libtorch's
/// kernels use (they change float rounding), the intra-op thread count (it changes reduction order), the OS, the
/// TorchSharp and libtorch builds and the .NET runtime. Recorded in every run's summary.json, so a figure says
/// where it came from; the seed is in the summary beside them.
/// </summary>
public static class HostInfo
{
    public static string Os => RuntimeInformation.OSDescription;
    public static string TorchSharpVersion => typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "?";
    /// <summary>The libtorch version TorchSharp reports (Python's torch.__version__), from the native package it loads.</summary>
    public static string LibTorchVersion => torch.__version__;
    public static string DotNet => RuntimeInformation.FrameworkDescription;

    /// <summary>
    /// The widest SIMD level the CPU offers of those libtorch's CPU kernels dispatch on (avx512 / avx2 / default), or the
    /// level forced by ATEN_CPU_CAPABILITY: the kernels' float rounding follows it.
    /// </summary>
    public static string CpuCapability
    {
        get
        {
            var forced = Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY");
            if (!string.IsNullOrEmpty(forced)) return $"{forced} (ATEN_CPU_CAPABILITY)";
            var flags = CpuInfoField("flags")?.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet() ?? [];
            return flags.Contains("avx512f") && flags.Contains("avx512bw") && flags.Contains("avx512vl") && flags.Contains("avx512dq") ? "avx512"
                : flags.Contains("avx2") && flags.Contains("fma") ? "avx2" : flags.Count > 0 ? "default" : RuntimeInformation.ProcessArchitecture.ToString();
        }
    }

    private static string? CpuInfoField(string name)
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal) && l[name.Length..].TrimStart().StartsWith(':'));
            return line?[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
    public static int LogicalCores => Environment.ProcessorCount;
    public static int TorchThreads => torch.get_num_threads();

    /// <summary>The CPU's model name from /proc/cpuinfo, or the architecture where that is unavailable.</summary>
    public static string Processor => CpuInfoField("model name") ?? RuntimeInformation.ProcessArchitecture.ToString();

    public static Dictionary<string, object> ToJson() => new()
    {
        ["processor"] = Processor, ["logical_cores"] = LogicalCores, ["torch_threads"] = TorchThreads, ["os"] = Os,
        ["torchsharp"] = TorchSharpVersion, ["libtorch"] = LibTorchVersion, ["cpu_capability"] = CpuCapability, ["dotnet"] = DotNet,
        ["device"] = torch.cuda.is_available() ? "cuda available" : "cpu only",
    };
}

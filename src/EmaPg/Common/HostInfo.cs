using System.Runtime.InteropServices;
using TorchSharp;

namespace EmaPg.Common;

/// <summary>
/// The facts that decide whether two runs can give bit-identical numbers: the processor (its SIMD paths change float
/// rounding in libtorch's kernels), the intra-op thread count (it changes reduction order), the OS and the TorchSharp /
/// libtorch build. Recorded in every summary.json and benchmark, so a figure says where it came from.
/// </summary>
public static class HostInfo
{
    public static string Os => RuntimeInformation.OSDescription;
    public static string TorchSharpVersion => typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "?";
    public static int LogicalCores => Environment.ProcessorCount;
    public static int TorchThreads => torch.get_num_threads();

    /// <summary>The CPU's model name from /proc/cpuinfo, or the architecture where that is unavailable.</summary>
    public static string Processor
    {
        get
        {
            try
            {
                var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                if (line is not null) return line[(line.IndexOf(':') + 1)..].Trim();
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
    }

    public static Dictionary<string, object> ToJson() => new()
    {
        ["processor"] = Processor, ["logical_cores"] = LogicalCores, ["torch_threads"] = TorchThreads, ["os"] = Os,
        ["torchsharp"] = TorchSharpVersion, ["device"] = torch.cuda.is_available() ? "cuda available" : "cpu only",
    };
}

using System.Runtime.InteropServices;
using TorchSharp;

namespace EmaPg.Bench;

/// <summary>What every benchmark reports the same way: medians, ratios, and the machine it ran on.</summary>
public static class BenchStats
{
    public static double Median(IReadOnlyList<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>a ÷ b, or null where a figure is unavailable or the divisor is not positive.</summary>
    public static double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 && !double.IsNaN(x) ? x / y : null;

    public static string UtcNow() => DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
    public static string Os => EmaPg.Common.HostInfo.Os;
    public static string TorchSharpVersion => EmaPg.Common.HostInfo.TorchSharpVersion;
}

using System.Text.Json;
using EmaPg.Bench;

namespace EmaPg.Tests;

/// <summary>
/// `emapg bench adamw --quick`: the report's structure, and that the two optimisers end on the same parameters.
/// Never asserts on time (the machine is shared).
/// </summary>
public class AdamWBenchTests
{
    [Fact]
    public void QuickRunTimesBothOptimizersAndTheyAgree()
    {
        var o = AdamWBenchOptions.QuickDefaults;
        var rep = AdamWBench.Run(o);
        Assert.Equal("adamw", rep.Benchmark);
        Assert.True(rep.Quick);
        var row = Assert.Single(rep.Rows);
        Assert.True(row.Parameters > 0);
        Assert.Equal(AdamWBench.TorchName, row.Torch.Optimizer);
        Assert.Equal(AdamWBench.OursName, row.Ours.Optimizer);
        foreach (var m in new[] { row.Torch, row.Ours })
        {
            Assert.Equal(o.Reps, m.StepsMs.Count);
            Assert.Equal(rep.PeakRssAvailable, m.FirstStepPeakRssExtraBytes is not null);
        }
        Assert.Equal(row.Torch.StepMsMedian / row.Ours.StepMsMedian, row.TimeRatio!.Value, 12);   // TorchSharp's over ours
        // Same update rule, same gradient, same number of steps: float32 rounding is all that may differ.
        Assert.True(row.MaxParameterDifference < 1e-6, $"max |Δθ| = {row.MaxParameterDifference}");
    }

    [Fact]
    public void CliQuickJsonAndTable()
    {
        var (rc, stdout, stderr) = Cli("bench", "adamw", "--quick", "--json");
        Assert.True(rc == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = Assert.Single(doc.RootElement.GetProperty("rows").EnumerateArray().ToList());
        foreach (var p in new[] { "model", "parameters", "torch", "ours", "timeRatio", "firstStepMemoryRatio", "maxParameterDifference" })
            Assert.True(r.TryGetProperty(p, out _), $"{p} missing");

        (rc, stdout, stderr) = Cli("bench", "adamw", "--quick");
        Assert.True(rc == 0, stderr);
        foreach (var s in new[] { "torch.optim.AdamW", "EmaPg.Optim.AdamW", "torch ÷ ours", "QUICK", "max |Δθ|:" })
            Assert.Contains(s, stdout);

        (rc, _, stderr) = Cli("bench", "adamw", "--quick", "--reps", "0");
        Assert.Equal(2, rc);
        Assert.Contains("--reps must be", stderr);
    }

    private static (int Rc, string Stdout, string Stderr) Cli(params string[] args) => EmaPg.Tests.Cli.CliProcess.Run(args);
}

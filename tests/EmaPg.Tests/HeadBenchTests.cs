using System.Text.Json;
using EmaPg.Bench;

namespace EmaPg.Tests;

/// <summary>
/// `emapg bench head --quick`: the report's structure, that fused and naive agree, and the memory facts that are
/// exact by construction (gradient sizes, which path keeps an [N,|V|] tensor through its forward). Never asserts on time.
/// </summary>
public class HeadBenchTests
{
    [Fact]
    public void QuickRunComparesNaiveFusedAndFloor()
    {
        var o = HeadBenchOptions.QuickDefaults;
        var rep = HeadBench.Run(o);
        Assert.Equal("head", rep.Benchmark);
        Assert.True(rep.Quick);
        Assert.Equal(o.ChunkSize, rep.ChunkSize);
        Assert.Equal(o.Reps, rep.FloorTimesMs.Count);
        foreach (var m in new[] { rep.Naive, rep.Fused })
        {
            Assert.Equal(o.Reps, m.TimesMs.Count);
            Assert.Equal(rep.PeakRssAvailable, m.PeakRssExtraBytes is not null);
            Assert.Equal(rep.PeakRssAvailable, m.PeakExtraBytes is not null);
        }
        long n = o.Tokens, v = o.Vocab, h = o.Hidden;
        Assert.Equal((n * h + v * h) * sizeof(float), rep.GradientBytes);
        // The naive forward holds the [N,|V|] logits (and more); the fused one holds only per-token outputs.
        Assert.True(rep.Naive.TrackedForwardBytes >= n * v * sizeof(float), $"naive tracked {rep.Naive.TrackedForwardBytes}");
        Assert.True(rep.Fused.TrackedForwardBytes * 20 < n * v * sizeof(float), $"fused tracked {rep.Fused.TrackedForwardBytes}");
        // Same loss, same gradients, up to float32 rounding in a different summation order.
        Assert.Equal(new[] { "logp_target", "log_z", "entropy", "logp_q", "kl", "loss", "grad_h", "grad_w" }, rep.RelDiffs.Keys.ToArray());
        Assert.Equal(rep.RelDiffs.Values.Max(), rep.MaxRelDiff);
        Assert.True(rep.MaxRelDiff < 1e-4, $"max rel diff {rep.MaxRelDiff}");
    }

    [Fact]
    public void CliQuickJsonHasTheContractShape()
    {
        var (rc, stdout, stderr) = Cli("bench", "head", "--quick", "--json", "--vocab", "700", "--k", "5");
        Assert.True(rc == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        foreach (var path in new[] { "naive", "fused" })
        {
            var m = root.GetProperty(path);
            Assert.Equal(JsonValueKind.Number, m.GetProperty("median_ms").ValueKind);
            Assert.True(m.TryGetProperty("peak_extra_bytes", out _), $"{path}.peak_extra_bytes missing");
        }
        Assert.Equal(JsonValueKind.Number, root.GetProperty("floor_ms").ValueKind);
        Assert.Equal(JsonValueKind.Number, root.GetProperty("max_rel_diff").ValueKind);
        Assert.Equal(700, root.GetProperty("vocab").GetInt32());
        Assert.Equal(5, root.GetProperty("k").GetInt32());
    }

    [Fact]
    public void CliQuickTablePrintsRatiosGoalsAndDefinitions()
    {
        var (rc, stdout, stderr) = Cli("bench", "head", "--quick");
        Assert.True(rc == 0, stderr);
        foreach (var s in new[] { "naive (full logits)", "fused loss (row chunks)", "floor (3 GEMMs)", "naive ÷ fused", "fused ÷ floor", "QUICK", "max_rel_diff", "goals:", "peak_extra_bytes:" })
            Assert.Contains(s, stdout);
    }

    [Theory]
    [InlineData("--k", "5000", "--k must be")]
    [InlineData("--vocab", "1", "--vocab must be")]
    [InlineData("--hidden", "0", "--hidden must be")]
    [InlineData("--tokens", "0", "--tokens must be")]
    [InlineData("--chunk", "0", "--chunk must be")]
    [InlineData("--reps", "0", "--reps must be")]
    public void CliRejectsBadOptionsNamingThem(string option, string value, string message)
    {
        var (rc, _, stderr) = Cli("bench", "head", "--quick", option, value);
        Assert.Equal(2, rc);
        Assert.Contains(message, stderr);
    }

    private static (int Rc, string Stdout, string Stderr) Cli(params string[] args) => EmaPg.Tests.Cli.CliProcess.Run(args);
}

using EmaPg.Training;

namespace EmaPg.Tests.Cli;

/// <summary>`emapg compare`: bad overrides and stale run directories are refused before anything trains.</summary>
[Collection("console")]
public class CompareCommandTests
{
    [Theory]
    [InlineData("seed=3", "--set seed")]
    [InlineData("preset=grpo", "--set preset")]
    [InlineData("kl_beta", "--set must be key=value")]
    [InlineData("no_such_key=1", "unknown config key 'no_such_key'")]
    [InlineData("kl_beta=-1", "kl_beta")]
    public void RejectsBadSetOverridesNamingThem(string set, string message)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"emapg-compare-{Guid.NewGuid():N}");
        var (code, _, stderr) = CliRunner.Run("compare", "--presets", "grpo", "--seeds", "1", "--out", dir, "--set", set);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
        Assert.DoesNotContain("   at ", stderr);   // no stack trace
        Assert.False(Directory.Exists(Path.Combine(dir, "grpo-s0")), "nothing may be trained or written");
    }

    /// <summary>Every entry's config is resolved before the first run: a bad second entry leaves nothing trained.</summary>
    [Fact]
    public void ABadPresetEntryIsRefusedBeforeAnythingTrains()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"emapg-compare-{Guid.NewGuid():N}");
        var (code, _, stderr) = CliRunner.Run("compare", "--presets", "gspo,gspo+no_such_key=1", "--seeds", "1", "--out", dir, "--iterations", "1");
        Assert.Equal(2, code);
        Assert.Contains("unknown config key 'no_such_key'", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.False(Directory.Exists(Path.Combine(dir, "gspo-s0")), "nothing may be trained or written");
        (code, _, stderr) = CliRunner.Run("compare", "--presets", "gspo+ema_eta=1,gspo+ema-eta=1", "--seeds", "1", "--out", dir);
        Assert.Equal(2, code);
        Assert.Contains("names a preset twice", stderr);
    }

    [Fact]
    public void RefusesToReuseARunMadeWithOtherSettings()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"emapg-compare-{Guid.NewGuid():N}");
        var runDir = Path.Combine(dir, "grpo-s0");
        Directory.CreateDirectory(runDir);
        var other = ConfigFile.Resolve("grpo", null, [("seed", "0"), ("iterations", "7")]);
        File.WriteAllText(Path.Combine(runDir, TrainRun.ConfigName), ConfigFile.Format(other));
        File.WriteAllText(Path.Combine(runDir, RunDirectory.MarkerName), "{\"format\":\"emapg-run\",\"version\":1}");
        try
        {
            var (code, _, stderr) = CliRunner.Run("compare", "--presets", "grpo", "--seeds", "1", "--out", dir, "--iterations", "5");
            Assert.Equal(2, code);
            Assert.Contains("different config", stderr);
            Assert.Equal(ConfigFile.Format(other), File.ReadAllText(Path.Combine(runDir, TrainRun.ConfigName)));   // untouched
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

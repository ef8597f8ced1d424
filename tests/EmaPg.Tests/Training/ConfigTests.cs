using EmaPg.Common;
using EmaPg.Training;

namespace EmaPg.Tests.Training;

public class ConfigTests
{
    [Theory]
    [InlineData("grpo", "k3", 1.0, 1.0, 1.0)]
    [InlineData("ema-anchor", "k3", 0.9, 1.0, 1.0)]
    [InlineData("ema-pg-reverse", "topk-reverse", 0.9, 0.0, 10.0)]
    [InlineData("ema-pg-forward", "topk-forward", 0.9, 0.0, 2.5)]
    public void PresetsCarryThePapersSettings(string preset, string estimator, double eta, double sMin, double sMax)
    {
        var c = ConfigFile.Resolve(preset, null, []);
        Assert.Equal(preset, c.Preset);
        Assert.Equal(estimator, c.KlEstimator);
        Assert.Equal(eta, c.EmaEta);
        Assert.Equal(10, c.EmaPeriod);
        Assert.Equal(0.001, c.KlBeta);
        Assert.Equal((sMin, sMax), (c.IsClipMin, c.IsClipMax));
        if (preset.StartsWith("ema-pg")) Assert.Equal(32, c.KlTopK);
    }

    [Fact]
    public void ResolvedConfigRoundTripsThroughItsFileFormat()
    {
        var c = ConfigFile.Resolve("ema-pg-forward", null, [("kl_beta", "0.05"), ("iterations", "7"), ("is-clip-max", "inf")]);
        var back = ConfigFile.Apply(new TrainConfig(), ConfigFile.Format(c), "roundtrip");
        Assert.Equal(c, back);
        Assert.Equal(double.PositiveInfinity, back.IsClipMax);
    }

    [Fact]
    public void ErrorsNameTheKeyTheRangeAndTheFileLine()
    {
        Assert.Contains("kl_beta must be in [0, 1E+06], got -1", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("kl_beta", "-1")])).Message);
        Assert.Contains("unknown config key 'klbeta'", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("klbeta", "1")])).Message);
        Assert.Contains("group_size must be an integer in [2, 1024], got 1", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("group_size", "1")])).Message);
        Assert.Contains("kl_estimator must be one of", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("kl_estimator", "k9")])).Message);
        Assert.Contains("pass_k must be ≤ eval_samples", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("pass_k", "9"), ("eval_samples", "4")])).Message);
        var e = Assert.Throws<UserError>(() => ConfigFile.Apply(new TrainConfig(), "seed = 1\n# ok\nema_eta = 2\n", "my.conf"));
        Assert.Equal("my.conf:3: ema_eta must be in [0, 1], got 2.", e.Message);
        Assert.Contains("my.conf:1: expected 'key = value'", Assert.Throws<UserError>(() => ConfigFile.Apply(new TrainConfig(), "seed 1", "my.conf")).Message);
        Assert.Contains("preset must be one of", Assert.Throws<UserError>(() => ConfigFile.Resolve("ppo", null, [])).Message);
    }

    [Fact]
    public void EmbeddedPresetsAreTheFilesInConfigs()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "../../../../../configs");
        foreach (var p in ConfigSchema.Presets)
            Assert.Equal(File.ReadAllText(Path.Combine(dir, p + ".conf")), ConfigFile.PresetText(p));
    }
}

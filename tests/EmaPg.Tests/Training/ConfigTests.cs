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

    [Theory]
    [InlineData("rpg-fkl", "rpg-fkl-reinforce", 0.0, "token-mean")]
    [InlineData("rpg-urkl", "rpg-urkl-reinforce", 0.0, "token-mean")]
    [InlineData("gspo", "gspo", 0.9, "seq-mean-token-mean")]
    [InlineData("cispo", "cispo", 0.9, "token-mean")]
    public void PolicyLossPresetsCarryTheirAlgorithmsSettings(string preset, string loss, double eta, string agg)
    {
        var c = ConfigFile.Resolve(preset, null, []);
        Assert.Equal((preset, loss, eta, agg, 10), (c.Preset, c.PolicyLoss, c.EmaEta, c.LossAggMode, c.EmaPeriod));
        if (preset == "gspo") Assert.Equal((3e-4, 4e-4), (c.ClipEpsLow, c.ClipEpsHigh));
        if (preset.StartsWith("rpg")) Assert.Equal((0.2, 0.28, 10.0), (c.ClipEpsLow, c.ClipEpsHigh, c.DualClipC));
    }

    [Fact]
    public void AResolvedConfigCutShortIsAnErrorNotAResumeWithDefaults()
    {
        var dir = Directory.CreateTempSubdirectory("emapg-cfg-").FullName;
        try
        {
            var path = Path.Combine(dir, "config");
            var text = ConfigFile.Format(ConfigFile.Resolve("grpo", null, [("hidden_size", "16")]));
            File.WriteAllText(path, text);
            Assert.Equal(16, ConfigFile.Load(new TrainConfig(), path).HiddenSize);
            File.WriteAllText(path, text[..text.IndexOf("hidden_size", StringComparison.Ordinal)]);
            Assert.Contains("cut short: it lacks hidden_size", Assert.Throws<UserError>(() => ConfigFile.Load(new TrainConfig(), path)).Message);
            // A complete file from before the end marker (and the keys added with it) still loads.
            var old = string.Join('\n', text.Split('\n').Where(l => !l.StartsWith("# end") && !l.StartsWith("dual_clip_c") && !l.StartsWith("kl_agg_mode") && !l.StartsWith("kl_in_reward_coef")));
            File.WriteAllText(path, old);
            Assert.Equal(16, ConfigFile.Load(new TrainConfig(), path).HiddenSize);
        }
        finally { Directory.Delete(dir, true); }
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
        Assert.Contains("kl_beta must be a number in [0, 1000000], got '-1'", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("kl_beta", "-1")])).Message);
        Assert.Contains("unknown config key 'klbeta'", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("klbeta", "1")])).Message);
        Assert.Contains("group_size must be an integer in [2, 1024], got '1'", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("group_size", "1")])).Message);
        Assert.Contains("kl_estimator must be one of", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("kl_estimator", "k9")])).Message);
        Assert.Contains("pass_k must be ≤ eval_samples", Assert.Throws<UserError>(() => ConfigFile.Resolve("grpo", null, [("pass_k", "9"), ("eval_samples", "4")])).Message);
        var e = Assert.Throws<UserError>(() => ConfigFile.Apply(new TrainConfig(), "seed = 1\n# ok\nema_eta = 2\n", "my.conf"));
        Assert.Equal("my.conf:3: ema_eta must be a number in [0, 1], got '2'.", e.Message);
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

public class ConfigSafetyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-config-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ADuplicateKeyIsAnErrorNamingBothLines()
    {
        var e = Assert.Throws<UserError>(() => ConfigFile.Apply(new TrainConfig(), "kl_beta = 0.1\nseed = 2\nkl-beta = 0.2\n", "my.conf"));
        Assert.Equal("my.conf:3: kl_beta is set twice (first on line 1).", e.Message);
    }

    [Fact]
    public void APresetInAFileSelectsThatPresetsSettings()
    {
        var f = Path.Combine(_dir, "p.conf");
        File.WriteAllText(f, "preset = grpo\nseed = 4\n");
        var c = ConfigFile.Resolve(null, f, []);
        Assert.Equal(ConfigFile.Resolve("grpo", null, [("seed", "4")]), c);
        Assert.Equal("k3", c.KlEstimator);
        Assert.Contains("contradicts", Assert.Throws<UserError>(() => ConfigFile.Resolve("ema-pg-forward", f, [])).Message);
    }

    /// <summary>For every numeric key, the range printed in --help is the range an out-of-range value is rejected with.</summary>
    [Fact]
    public void HelpRangesAreTheEnforcedRanges()
    {
        var range = new System.Text.RegularExpressions.Regex(@"[\[(][^\[\]()]*, [^\[\]()]*[\])]$");
        int checkedKeys = 0;
        foreach (var key in ConfigSchema.Keys)
        {
            var m = range.Match(key.Help);
            if (!m.Success) continue;
            var bounds = m.Value[1..^1].Split(", ");
            bool minOpen = m.Value[0] == '(', maxOpen = m.Value[^1] == ')';
            double min = double.Parse(bounds[0], System.Globalization.CultureInfo.InvariantCulture);
            string max = bounds[1];
            foreach (var bad in new[] { minOpen ? bounds[0] : (min - 1).ToString(System.Globalization.CultureInfo.InvariantCulture), max == "∞" ? null : maxOpen ? max : max + "1" })
            {
                if (bad is null) continue;
                var e = Assert.Throws<UserError>(() => key.Set(new TrainConfig(), bad));
                Assert.Contains(m.Value, e.Message);
            }
            if (!minOpen) key.Set(new TrainConfig(), bounds[0]);   // the printed bound itself is accepted
            checkedKeys++;
        }
        Assert.True(checkedKeys > 30, $"{checkedKeys}");
    }

    [Fact]
    public void CombinationsAreRejectedBeforeARunDirectoryExists()
    {
        var dir = Path.Combine(_dir, "never");
        var c = new TrainConfig { KlTopK = 0 };   // each value in range; the combination with topk-reverse is not
        Assert.Contains("kl_topk must be in [1, 64]", Assert.Throws<UserError>(() => TrainRun.Execute(c, dir, TrainRun.StartMode.New, cacheDir: _dir)).Message);
        var odd = new TrainConfig { HiddenSize = 12, NumHeads = 4, NumKvHeads = 2 };   // head dim 3: no rotary embedding
        Assert.ThrowsAny<UserError>(() => TrainRun.Execute(odd, dir, TrainRun.StartMode.New, cacheDir: _dir));
        Assert.False(Directory.Exists(dir));
    }
}

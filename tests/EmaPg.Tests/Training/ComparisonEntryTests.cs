using EmaPg.Common;
using EmaPg.Training;

namespace EmaPg.Tests.Training;

/// <summary>`compare --presets PRESET+key=value…`: the same preset with and without its EMA anchor in one comparison.</summary>
public class ComparisonEntryTests
{
    [Theory]
    [InlineData("gspo+ema_eta=1", "gspo", 1.0, "gspo")]
    [InlineData("cispo", "cispo", 0.9, "cispo")]
    [InlineData("rpg-fkl", "rpg-fkl", 0.0, "rpg-fkl-reinforce")]
    [InlineData("rpg-fkl+ema-eta=0.9", "rpg-fkl", 0.9, "rpg-fkl-reinforce")]
    public void AnEntryIsItsPresetWithItsOwnOverrides(string text, string preset, double eta, string loss)
    {
        var e = Comparison.ParseEntry(text);
        Assert.Equal(preset, e.Preset);
        Assert.Equal(text.Replace("ema-eta", "ema_eta"), e.Label);
        var c = e.Resolve(2, [("iterations", "7")]);
        Assert.Equal(preset, c.Preset);
        Assert.Equal(eta, c.EmaEta);
        Assert.Equal(loss, c.PolicyLoss);
        Assert.Equal(2, c.Seed);
        Assert.Equal(7, c.Iterations);
        // Everything but the entry's own keys is the preset's.
        var plain = ConfigFile.Resolve(preset, null, [("seed", "2"), ("iterations", "7"), ("ema_eta", eta.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        Assert.Equal(ConfigFile.Format(plain), ConfigFile.Format(c));
    }

    [Fact]
    public void TheEntrysOverrideComesAfterCompareSet()
    {
        var c = Comparison.ParseEntry("gspo+ema_eta=1").Resolve(0, [("ema_eta", "0.5"), ("kl_beta", "0.01")]);
        Assert.Equal(1.0, c.EmaEta);
        Assert.Equal(0.01, c.KlBeta);
    }

    [Theory]
    [InlineData("nope+ema_eta=1", "--presets must be one of")]
    [InlineData("gspo+ema_eta", "'ema_eta' must be key=value")]
    [InlineData("gspo+kl_beta=1e+3", "'3' must be key=value")]
    [InlineData("gspo+seed=3", "seed is not allowed")]
    [InlineData("gspo+model=/tmp/m", "may hold only letters")]
    public void MalformedEntriesAreNamed(string text, string message)
    {
        var e = Assert.Throws<UserError>(() => Comparison.ParseEntry(text));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void AnUnknownKeyOrOutOfRangeValueIsRefusedWhenResolved()
    {
        Assert.Contains("unknown config key 'no_such_key'", Assert.Throws<UserError>(() => Comparison.ParseEntry("gspo+no_such_key=1").Resolve(0, [])).Message);
        Assert.Contains("ema_eta", Assert.Throws<UserError>(() => Comparison.ParseEntry("gspo+ema_eta=2").Resolve(0, [])).Message);
    }
}

using System.CommandLine;
using EmaPg.Training;

namespace EmaPg.Cli.Commands;

/// <summary>
/// Config keys as command-line options (--kl-beta for kl_beta), generated from <see cref="ConfigSchema"/> so that a key has
/// one name, one range and one help text in config files and in every verb. A true/false key may be given as a bare flag
/// (--no-chat-template means --no-chat-template true).
/// </summary>
internal sealed class ConfigOptions
{
    private readonly List<(ConfigKey Key, Option<string?> Option)> _options;

    private ConfigOptions(List<(ConfigKey, Option<string?>)> options) => _options = options;

    /// <summary>Options for <paramref name="names"/> (all keys when null), added to <paramref name="cmd"/>.</summary>
    public static ConfigOptions Add(Command cmd, IEnumerable<string>? names = null)
    {
        var keys = names is null ? ConfigSchema.Keys : names.Select(n => ConfigSchema.Find(n) ?? throw new InvalidOperationException($"no config key {n}")).ToList();
        var list = keys.Select(k =>
        {
            var o = new Option<string?>(k.Option) { Description = k.Help };
            if (k.Help.EndsWith("(true/false)", StringComparison.Ordinal)) o.Arity = ArgumentArity.ZeroOrOne;
            return (k, o);
        }).ToList();
        foreach (var (_, o) in list) cmd.Options.Add(o);
        return new ConfigOptions(list);
    }

    /// <summary>The (key, value) pairs given on the command line, in the schema's order; a bare flag is "true".</summary>
    public List<(string Name, string Value)> Given(ParseResult pr) =>
        _options.Where(x => pr.GetResult(x.Option) is not null).Select(x => (x.Key.Name, pr.GetValue(x.Option) ?? "true")).ToList();

    /// <summary>Applies what was given to <paramref name="c"/> (each value checked by its key).</summary>
    public TrainConfig Apply(ParseResult pr, TrainConfig c)
    {
        foreach (var (name, value) in Given(pr)) c = ConfigSchema.Find(name)!.Set(c, value);
        return c;
    }
}

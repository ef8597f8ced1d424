using System.Reflection;
using System.Text;
using EmaPg.Common;

namespace EmaPg.Training;

/// <summary>
/// Readable config files: one `key = value` per line, `#` starts a comment. Presets ship as embedded
/// copies of configs/*.conf; a run writes its resolved config in the same format, so any run directory's
/// `config` can be passed back with --config.
/// </summary>
public static class ConfigFile
{
    public static TrainConfig Apply(TrainConfig c, string text, string source)
    {
        foreach (var (lineNo, key, value) in Parse(text, source))
        {
            try { c = key.Set(c, value); }
            catch (UserError e) { throw new UserError($"{source}:{lineNo}: {e.Message}"); }
        }
        return c;
    }

    /// <summary>The (line, key, value) entries of a config text; a malformed line, an unknown key or a key given twice is an error naming the line.</summary>
    private static List<(int Line, ConfigKey Key, string Value)> Parse(string text, string source)
    {
        var entries = new List<(int, ConfigKey, string)>();
        var seen = new Dictionary<string, int>();
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.Split('#')[0].Trim();
            if (line.Length == 0) continue;
            int eq = line.IndexOf('=');
            if (eq <= 0) throw new UserError($"{source}:{lineNo}: expected 'key = value', got '{line}'.");
            var name = line[..eq].Trim();
            var key = ConfigSchema.Find(name) ?? throw new UserError($"{source}:{lineNo}: unknown config key '{name}'.");
            if (seen.TryGetValue(key.Name, out var first)) throw new UserError($"{source}:{lineNo}: {key.Name} is set twice (first on line {first}).");
            seen[key.Name] = lineNo;
            entries.Add((lineNo, key, line[(eq + 1)..].Trim()));
        }
        return entries;
    }

    /// <summary>The preset a config file names with `preset = …`, if any (checked like every other value).</summary>
    public static string? PresetOf(string path)
    {
        var text = ReadText(path);
        var entry = Parse(text, path).FirstOrDefault(e => e.Key.Name == "preset");
        if (entry.Key is null) return null;
        try { return entry.Key.Set(new TrainConfig(), entry.Value).Preset; }
        catch (UserError e) { throw new UserError($"{path}:{entry.Line}: {e.Message}"); }
    }

    private static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new UserError($"config file '{path}' does not exist.");
        return File.ReadAllText(path);
    }

    /// <summary>
    /// Reads a config file. A run's resolved config (<see cref="Format"/>'s header) must be complete: one cut short (a torn
    /// write, a damaged disk) would otherwise resume with defaults for the missing keys — a different, full-size job.
    /// Files written before <see cref="EndMarker"/> existed lack it and the keys added since; those default to the old behaviour.
    /// </summary>
    public static TrainConfig Load(TrainConfig c, string path)
    {
        var text = ReadText(path);
        if (text.StartsWith(Header, StringComparison.Ordinal) && !text.Contains(EndMarker, StringComparison.Ordinal))
        {
            var present = Parse(text, path).Select(e => e.Key.Name).ToHashSet();
            var missing = ConfigSchema.Keys.Select(k => k.Name).Where(k => !present.Contains(k) && !KeysAddedWithEndMarker.Contains(k)).ToList();
            if (missing.Count > 0)
                throw new UserError($"{path} is a resolved run config cut short: it lacks {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}. Restore it (e.g. from the run's first lines of output) before resuming.");
        }
        return Apply(c, text, path);
    }

    private const string Header = "# EmaPg resolved training config.";
    private const string EndMarker = "# end of config";
    /// <summary>Keys introduced together with <see cref="EndMarker"/>: an older, complete file lacks them.</summary>
    private static readonly HashSet<string> KeysAddedWithEndMarker = ["dual_clip_c", "kl_agg_mode", "kl_in_reward_coef"];

    /// <summary>The preset's text (embedded in the library, identical to configs/&lt;name&gt;.conf).</summary>
    public static string PresetText(string preset)
    {
        Check.OneOf("preset", preset, ConfigSchema.Presets);
        var asm = typeof(ConfigFile).Assembly;
        using var s = asm.GetManifestResourceStream($"EmaPg.configs.{preset}.conf")
            ?? throw new InvalidOperationException($"preset resource '{preset}' missing from {asm.GetName().Name}.");
        return new StreamReader(s).ReadToEnd();
    }

    public const string DefaultPreset = "ema-pg-reverse";

    /// <summary>
    /// Defaults, then the preset, then an optional config file, then explicit overrides, then cross-checks. The preset is
    /// <paramref name="preset"/> (from --preset) or else the one the config file names, so `preset = grpo` in a file
    /// means GRPO's settings, not just the label; naming two different presets is an error.
    /// </summary>
    public static TrainConfig Resolve(string? preset, string? configPath, IEnumerable<(string Key, string Value)> overrides)
    {
        var filePreset = configPath is null ? null : PresetOf(configPath);
        if (preset is not null && filePreset is not null && preset != filePreset)
            throw new UserError($"--preset {preset} contradicts 'preset = {filePreset}' in {configPath}; give one of them.");
        preset ??= filePreset ?? DefaultPreset;
        var c = new TrainConfig() with { Preset = preset };
        c = Apply(c, PresetText(preset), $"preset {preset}");
        if (configPath is not null) c = Load(c, configPath);
        foreach (var (k, v) in overrides)
        {
            var key = ConfigSchema.Find(k) ?? throw new UserError($"unknown config key '{k}'.");
            c = key.Set(c, v);
        }
        return ConfigSchema.CrossValidate(c);
    }

    public static string Format(TrainConfig c)
    {
        var sb = new StringBuilder(Header).Append(" Pass back with --config; every key is also a --option.\n");
        foreach (var g in ConfigSchema.Keys.GroupBy(k => k.Section))
        {
            sb.Append($"\n# [{g.Key}]\n");
            foreach (var k in g) sb.Append($"{k.Name} = {k.Get(c)}    # {k.Help}\n");
        }
        return sb.Append('\n').Append(EndMarker).Append('\n').ToString();
    }
}

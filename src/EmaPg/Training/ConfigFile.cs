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
            try { c = key.Set(c, line[(eq + 1)..].Trim()); }
            catch (UserError e) { throw new UserError($"{source}:{lineNo}: {e.Message}"); }
        }
        return c;
    }

    public static TrainConfig Load(TrainConfig c, string path)
    {
        if (!File.Exists(path)) throw new UserError($"config file '{path}' does not exist.");
        return Apply(c, File.ReadAllText(path), path);
    }

    /// <summary>The preset's text (embedded in the library, identical to configs/&lt;name&gt;.conf).</summary>
    public static string PresetText(string preset)
    {
        Check.OneOf("preset", preset, ConfigSchema.Presets);
        var asm = typeof(ConfigFile).Assembly;
        using var s = asm.GetManifestResourceStream($"EmaPg.configs.{preset}.conf")
            ?? throw new InvalidOperationException($"preset resource '{preset}' missing from {asm.GetName().Name}.");
        return new StreamReader(s).ReadToEnd();
    }

    /// <summary>Defaults, then the preset, then an optional config file, then explicit overrides, then cross-checks.</summary>
    public static TrainConfig Resolve(string preset, string? configPath, IEnumerable<(string Key, string Value)> overrides)
    {
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
        var sb = new StringBuilder("# EmaPg resolved training config. Pass back with --config; every key is also a --option.\n");
        foreach (var g in ConfigSchema.Keys.GroupBy(k => k.Section))
        {
            sb.Append($"\n# [{g.Key}]\n");
            foreach (var k in g) sb.Append($"{k.Name} = {k.Get(c)}    # {k.Help}\n");
        }
        return sb.ToString();
    }
}

using System.Globalization;
using EmaPg.Tests.Training;
using EmaPg.Training;

namespace EmaPg.Tests.Cli;

/// <summary>
/// A bounded fuzz of the CLI as a hostile user drives it: random option values, random config files and randomly
/// damaged run directories, each in its own process. Every case must end with exit 0, or 2/3 and one 'error:' line;
/// never a stack trace or an internal error; no file outside the case's run directory changes; a failed command
/// creates no run directory, and a damaged run loses nothing it had (its metrics only grow). The seed is fixed, so a
/// failure reproduces; EMAPG_FUZZ_CASES sets the number of cases per kind (default 10) for longer runs by hand.
/// </summary>
public class FuzzTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("emapg-fuzz-").FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static int CasesPerKind => int.TryParse(Environment.GetEnvironmentVariable("EMAPG_FUZZ_CASES"), out var n) && n > 0 ? n : 10;

    // Keys whose large valid values would make a case slow get only small or invalid values.
    private static readonly Dictionary<string, string[]> Expensive = new()
    {
        ["iterations"] = ["1", "2", "0", "-1", "1e3", "x"], ["sft_steps"] = ["0", "1", "-3", "1.5"], ["hidden_size"] = ["16", "7", "8", "0", "99999999"],
        ["intermediate_size"] = ["8", "16", "0"], ["num_layers"] = ["1", "0", "129"], ["num_heads"] = ["1", "2", "3", "0"], ["num_kv_heads"] = ["1", "2", "0"],
        ["prompts_per_iteration"] = ["1", "2", "0", "4097"], ["group_size"] = ["2", "3", "1"], ["max_new_tokens"] = ["1", "3", "0"],
        ["eval_problems"] = ["1", "2", "0"], ["eval_samples"] = ["1", "2", "0"], ["pass_k"] = ["1", "2", "5"], ["sft_batch"] = ["1", "4", "0"],
        ["inner_updates"] = ["1", "2", "65"], ["minibatches"] = ["1", "2", "3", "0", "5000"], ["eval_every"] = ["0", "1"], ["checkpoint_every"] = ["1", "2", "0"],
        ["threads"] = ["1", "0", "-1", "257"], ["vocab_size"] = ["16", "20", "64", "15"], ["device"] = ["cpu", "cuda", "tpu"], ["task_max_digits"] = ["1", "0", "10"],
        ["task_min_digits"] = ["1", "2", "0"], ["seed"] = ["0", "7", "2147483647", "2147483648", "-1"],
    };

    private static readonly string[] Wild =
    [
        "0", "-0", "1", "-1", "1e308", "-1e308", "1e-40", "NaN", "nan", "inf", "-inf", "∞", "", " ", "2147483648", "0.5", "1.0000001", "true", "false",
        "yes", "topk-reverse", "k3", "exact-forward", "token-mean", "group", "grpo", "1,2", "'", "\"", "#", "=", "0x10", "١",
    ];

    private static string[] RandomOverrides(Random rng)
    {
        var args = new List<string>();
        foreach (var key in ConfigSchema.Keys.Where(k => k.Name != "preset").OrderBy(_ => rng.Next()).Take(rng.Next(1, 4)))
        {
            var pool = Expensive.TryGetValue(key.Name, out var cheap) ? cheap : Wild;
            args.Add(key.Option);
            args.Add(pool[rng.Next(pool.Length)]);
        }
        return [.. args];
    }

    /// <summary>Runs one case in <paramref name="work"/>, with a sentinel tree beside it that must not change.</summary>
    private void Case(string work, string what, string[] args, string? runDir, bool runExisted)
    {
        var sentinel = Path.Combine(_root, "sentinel");
        var before = RunSafetyTests.Tree(sentinel);
        var runBefore = runExisted ? RunSafetyTests.Tree(runDir!) : null;
        var metricsBefore = runExisted && File.Exists(Path.Combine(runDir!, MetricsLog.FileName)) ? File.ReadAllText(Path.Combine(runDir!, MetricsLog.FileName)) : null;
        var r = RunSafetyCliTests.Emapg(work, args);
        RunSafetyCliTests.AssertClean(r, what);
        Assert.Equal(before, RunSafetyTests.Tree(sentinel));
        if (runDir is null) return;
        if (!runExisted && r.Rc != 0) Assert.False(Directory.Exists(runDir) && Directory.EnumerateFileSystemEntries(runDir).Any(), $"{what}: a failed start left {runDir}");
        if (runExisted)
        {
            foreach (var f in runBefore!.Keys.Where(f => !f.StartsWith("checkpoint") && !f.StartsWith(".lock")))
                Assert.True(File.Exists(Path.Combine(runDir!, f)), $"{what}: {f} was lost");
            if (metricsBefore is not null)
            {
                var now = File.ReadAllText(Path.Combine(runDir!, MetricsLog.FileName));
                var kept = metricsBefore.EndsWith('\n') ? metricsBefore : metricsBefore[..(metricsBefore.LastIndexOf('\n') + 1)];   // only a torn tail may go
                Assert.True(now.StartsWith(kept, StringComparison.Ordinal), $"{what}: metrics.jsonl lost rows");
            }
        }
    }

    [Fact]
    public void RandomOptionsConfigFilesAndDamagedRunsNeverCrashOrLoseData()
    {
        var rng = new Random(20261126);
        Directory.CreateDirectory(Path.Combine(_root, "sentinel", ".git"));
        File.WriteAllText(Path.Combine(_root, "sentinel", ".git", "config"), "[core]\n");
        File.WriteAllText(Path.Combine(_root, "sentinel", "notes.txt"), "keep me");
        var work = Path.Combine(_root, "work");
        Directory.CreateDirectory(work);
        int cases = 0;

        // 1. Random option values on top of a tiny valid run.
        for (int i = 0; i < CasesPerKind; i++, cases++)
        {
            var run = Path.Combine(work, $"opt-{i}");
            string[] args = ["train", .. RunSafetyCliTests.TinyWith(RandomOverrides(rng)), "--out", run];
            Case(work, string.Join(' ', args), args, run, runExisted: false);
        }

        // 2. Random config files: valid and invalid lines, duplicates, presets, garbage.
        var keys = ConfigSchema.Keys.Select(k => k.Name).ToArray();
        for (int i = 0; i < CasesPerKind; i++, cases++)
        {
            var lines = Enumerable.Range(0, rng.Next(1, 6)).Select(_ => rng.Next(10) switch
            {
                0 => "this is not a key value line",
                1 => $"{keys[rng.Next(keys.Length)]} =",
                2 => "# a comment",
                3 => $"preset = {ConfigSchema.Presets[rng.Next(ConfigSchema.Presets.Count)]}",
                4 => "\u0000\u00ff binary",
                _ => $"{keys[rng.Next(keys.Length)]} = {Wild[rng.Next(Wild.Length)]}",
            });
            var conf = Path.Combine(_root, "sentinel", $"fuzz-{i}.conf");
            var text = string.Join(rng.Next(2) == 0 ? "\n" : "\r\n", lines);
            File.WriteAllText(conf, text);
            var run = Path.Combine(work, $"conf-{i}");
            string[] args = ["train", "--config", conf, .. RunSafetyCliTests.Tiny, "--out", run];
            Case(work, $"config file: {text}", args, run, runExisted: false);
        }

        // 3. A finished tiny run, copied and damaged at random, then resumed, evaluated or plotted.
        var good = Path.Combine(work, "good");
        var made = RunSafetyCliTests.Emapg(work, ["train", .. RunSafetyCliTests.TinyWith("--iterations", "3"), "--out", good]);
        Assert.Equal(0, made.Rc);
        File.Delete(Path.Combine(good, RunDirectory.SummaryName));   // so --resume has iterations left to run after a fallback
        for (int i = 0; i < CasesPerKind; i++, cases++)
        {
            var run = Path.Combine(work, $"damaged-{i}");
            CopyTree(good, run);
            var files = Directory.GetFiles(run, "*", SearchOption.AllDirectories).Where(f => !f.Contains("tensorboard")).ToArray();
            var victim = files[rng.Next(files.Length)];
            var bytes = File.ReadAllBytes(victim);
            string damage = rng.Next(4) switch
            {
                0 when bytes.Length > 0 => Do(() => File.WriteAllBytes(victim, bytes[..rng.Next(bytes.Length)]), "truncated"),
                1 when bytes.Length > 0 => Do(() => { bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8)); File.WriteAllBytes(victim, bytes); }, "bit flipped"),
                2 => Do(() => File.Delete(victim), "deleted"),
                _ => Do(() => File.AppendAllText(victim, "{\"iteration\":"), "torn append"),
            };
            string[] args = rng.Next(3) switch
            {
                0 => ["eval", run, "--samples", "1", "--k", "1", "--problems", "2"],
                1 => ["plot", run],
                _ => ["train", "--resume", run],
            };
            Case(work, $"{Path.GetFileName(victim)} {damage}; {string.Join(' ', args)}", args, run, runExisted: true);
        }
        Assert.Equal(3 * CasesPerKind, cases);
    }

    private static string Do(Action a, string name) { a(); return name; }

    private static void CopyTree(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(f, f.Replace(from, to));
    }
}

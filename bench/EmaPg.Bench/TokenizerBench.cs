using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmaPg.Tokenization;
using Microsoft.ML.Tokenizers;

namespace EmaPg.Bench;

/// <summary>Settings of <see cref="TokenizerBench"/>; the CLI validates them (emapg bench tokenizer).</summary>
public sealed record TokenizerBenchOptions
{
    /// <summary>Model directory with tokenizer.json and tokenizer_config.json.</summary>
    public required string ModelDir { get; init; }
    /// <summary>UTF-8 text file encoded whole ("document") and line by line ("lines").</summary>
    public required string InputPath { get; init; }
    /// <summary>Timed passes per library and workload, after one untimed pass.</summary>
    public int Reps { get; init; } = 5;
    /// <summary>Golden files of HF's tokenizer ({"encodings": [{"text", "ids"}…]}) on which each library's ids are checked.</summary>
    public IReadOnlyList<string> Goldens { get; init; } = [];
}

/// <summary>How many golden texts a library encodes to HF's ids.</summary>
public sealed record TokenizerParity(string Library, string Goldens, int Texts, int Equal, IReadOnlyList<string> FirstMismatches);

/// <summary>One library on one workload.</summary>
public sealed record TokenizerMeasurement(
    string Library,
    string Workload,
    int Calls,
    long Tokens,
    double SecondsMedian,
    double SecondsMin,
    double SecondsMax,
    double TokensPerSecond,
    double CharsPerSecond,
    double FirstPassSeconds,
    double FirstPassTokensPerSecond,
    int CallsEqualToHf);

public sealed record TokenizerBenchReport(
    string Benchmark,
    string Date,
    string Model,
    string Input,
    long InputChars,
    int Reps,
    int ProcessorCount,
    string Os,
    double HfLoadSeconds,
    double MlLoadSeconds,
    IReadOnlyDictionary<string, string> Definitions,
    IReadOnlyList<TokenizerMeasurement> Rows,
    IReadOnlyDictionary<string, double?> HfOverMlTokensPerSecond,
    IReadOnlyList<TokenizerParity> Parity);

/// <summary>
/// Encoding throughput of the two byte-level BPE implementations served here, on the same tokenizer.json and text:
/// <see cref="HfTokenizer"/> (Hugging Face's Rust tokenizers through Tokenizers.DotNet, what the library uses) and
/// Microsoft.ML.Tokenizers' BpeTokenizer configured from tokenizer.json (vocab, merges, added tokens, the Split
/// regex, byte-level). Single-threaded calls, interleaved per pass, medians (the machine is shared). Each ML
/// encoding is also compared with HF's, call by call.
/// </summary>
public static class TokenizerBench
{
    public static TokenizerBenchReport Run(TokenizerBenchOptions o, Action<string>? log = null)
    {
        string text = File.ReadAllText(o.InputPath);
        var lines = text.Split('\n').Where(l => l.Length > 0).ToArray();
        var clock = Stopwatch.StartNew();
        using var hf = HfTokenizer.Load(o.ModelDir);
        double hfLoad = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var ml = MlBpe.Create(Path.Combine(o.ModelDir, "tokenizer.json"));
        double mlLoad = clock.Elapsed.TotalSeconds;
        log?.Invoke($"loaded: HF {hfLoad:0.00} s, ML {mlLoad:0.00} s; {text.Length} chars, {lines.Length} lines");

        var workloads = new (string Name, string[] Calls)[] { ("document", [text]), ("lines", lines) };
        var libraries = new (string Name, Func<string, int[]> Encode)[]
        {
            ("Tokenizers.DotNet (HF Rust)", s => hf.Encode(s)),
            ("Microsoft.ML.Tokenizers BpeTokenizer", s => ml.EncodeToIds(s).ToArray()),
        };
        var rows = new List<TokenizerMeasurement>();
        var ratios = new Dictionary<string, double?>();
        foreach (var (wName, calls) in workloads)
        {
            var reference = calls.Select(c => hf.Encode(c)).ToArray();
            long chars = calls.Sum(c => (long)c.Length);
            var times = libraries.Select(_ => new List<double>()).ToArray();
            var equal = new int[libraries.Length];
            var first = new double[libraries.Length];
            for (int l = 0; l < libraries.Length; l++)
            {
                // The first pass meets each word once more only for HF (its reference pass above); ML's caches are cold.
                var results = new int[calls.Length][];
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < calls.Length; i++) results[i] = libraries[l].Encode(calls[i]);
                first[l] = sw.Elapsed.TotalSeconds;
                for (int i = 0; i < calls.Length; i++)
                    if (results[i].AsSpan().SequenceEqual(reference[i])) equal[l]++;
            }
            for (int rep = 0; rep < o.Reps; rep++)
                for (int k = 0; k < libraries.Length; k++)
                {
                    int l = (k + rep) % libraries.Length;   // alternate which library goes first
                    var sw = Stopwatch.StartNew();
                    foreach (var c in calls) libraries[l].Encode(c);
                    times[l].Add(sw.Elapsed.TotalSeconds);
                }
            long tokens = reference.Sum(r => (long)r.Length);
            double? hfRate = null, mlRate = null;
            for (int l = 0; l < libraries.Length; l++)
            {
                double med = BenchStats.Median(times[l]);
                rows.Add(new TokenizerMeasurement(libraries[l].Name, wName, calls.Length, tokens, med, times[l].Min(), times[l].Max(), tokens / med, chars / med, first[l], tokens / first[l], equal[l]));
                if (l == 0) hfRate = tokens / med; else mlRate = tokens / med;
                log?.Invoke($"{wName}: {libraries[l].Name} {tokens / med:0} tokens/s");
            }
            ratios[wName] = BenchStats.Ratio(hfRate, mlRate);
        }
        var parity = new List<TokenizerParity>();
        foreach (var g in o.Goldens)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(g));
            var cases = doc.RootElement.GetProperty("encodings").EnumerateArray()
                .Select(e => (Text: e.GetProperty("text").GetString()!, Ids: e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray())).ToList();
            foreach (var (lib, encode) in libraries)
            {
                var bad = cases.Where(c => !encode(c.Text).AsSpan().SequenceEqual(c.Ids)).Select(c => JsonSerializer.Serialize(c.Text)).ToList();
                parity.Add(new TokenizerParity(lib, g, cases.Count, cases.Count - bad.Count, bad.Take(5).ToList()));
            }
        }
        var defs = new Dictionary<string, string>
        {
            ["document"] = "the whole input file encoded in one call",
            ["lines"] = "each non-empty line encoded in its own call (many short prompts)",
            ["tokens/s"] = "HF's token count ÷ median wall time of one pass over the workload (single thread, warm caches: every pass after the first)",
            ["first pass"] = "the same for each library's first pass; ML's word cache is cold only in the document workload (the lines reuse its words), HF's BPE cache already saw the text in the reference pass",
            ["equal to HF"] = "calls whose ids equal Tokenizers.DotNet's (= HF tokenizers'; the parity tests check HF's goldens)",
        };
        return new TokenizerBenchReport("tokenizer", BenchStats.UtcNow(), o.ModelDir, o.InputPath, text.Length, o.Reps,
            Environment.ProcessorCount, BenchStats.Os, hfLoad, mlLoad, defs, rows, ratios, parity);
    }
}

/// <summary>Microsoft.ML.Tokenizers' BpeTokenizer configured from a byte-level BPE tokenizer.json, the contender.</summary>
internal static class MlBpe
{
    public static BpeTokenizer Create(string tokenizerJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJson));
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? m[0].GetString() + " " + m[1].GetString() : m.GetString()!).ToList();
        var added = root.GetProperty("added_tokens").EnumerateArray().ToDictionary(a => a.GetProperty("content").GetString()!, a => a.GetProperty("id").GetInt32());
        string pattern = FindSplitRegex(root.GetProperty("pre_tokenizer"))
            ?? throw new InvalidOperationException($"{tokenizerJson}: no Split pre-tokenizer regex.");
        return BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            SpecialTokens = added,
            PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), added),
            ByteLevel = true,
        });
    }

    private static string? FindSplitRegex(JsonElement pre)
    {
        if (pre.TryGetProperty("pretokenizers", out var list))
            foreach (var p in list.EnumerateArray())
                if (FindSplitRegex(p) is { } r) return r;
        return pre.TryGetProperty("type", out var t) && t.GetString() == "Split" ? pre.GetProperty("pattern").GetProperty("Regex").GetString() : null;
    }
}

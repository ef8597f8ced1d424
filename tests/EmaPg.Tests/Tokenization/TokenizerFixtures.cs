using System.Diagnostics;
using System.Text.Json;
using EmaPg.Tokenization;

namespace EmaPg.Tests.Tokenization;

/// <summary>
/// The real tokenizer files and the goldens HF's own code made from them (tools/goldens/hf_goldens.py). Qwen's
/// files are committed; Llama 3's (Llama 3 Community License) are fetched by tools/goldens/fetch-tokenizers.sh
/// into .cache/tokenizers/llama3 on first use, and a failed fetch fails the Llama tests with the script's output.
/// </summary>
internal static class TokenizerFixtures
{
    public static readonly string[] Names = ["qwen3", "qwen2_5", "llama3"];
    private static readonly Dictionary<string, HfTokenizer> Loaded = [];
    private static readonly object Gate = new();

    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "EmaPg.slnx"))) return d.FullName;
        throw new InvalidOperationException("EmaPg.slnx not found above " + AppContext.BaseDirectory);
    }

    public static string FixtureDir => Path.Combine(RepoRoot, "tests", "EmaPg.Tests", "Fixtures");

    public static string ModelDir(string name)
    {
        if (name != "llama3") return Path.Combine(RepoRoot, "assets", "tokenizers", name);
        string dir = Path.Combine(RepoRoot, ".cache", "tokenizers", "llama3");
        lock (Gate)
        {
            if (!File.Exists(Path.Combine(dir, "tokenizer.json")) || !File.Exists(Path.Combine(dir, "tokenizer_config.json"))) Fetch();
        }
        return dir;
    }

    private static void Fetch()
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(RepoRoot, "tools", "goldens", "fetch-tokenizers.sh"));
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"Llama 3's tokenizer files are fetched at test time (they may not be committed) and the fetch failed: tools/goldens/fetch-tokenizers.sh exited {p.ExitCode}.\n{output}\n{err.Result}");
    }

    public static HfTokenizer Tokenizer(string name)
    {
        string dir = ModelDir(name);
        lock (Gate)
        {
            if (!Loaded.TryGetValue(name, out var t)) Loaded[name] = t = HfTokenizer.Load(dir);
            return t;
        }
    }

    public static JsonElement Golden(string name) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureDir, "hf", "tokenizers", name + ".json"))).RootElement;

    /// <summary>Every mismatch of ids, ids_with_special, decoded and decoded_skip_special against a golden "encodings" array.</summary>
    public static List<string> EncodingFailures(HfTokenizer tok, JsonElement encodings, out int count)
    {
        var failures = new List<string>();
        count = 0;
        foreach (var e in encodings.EnumerateArray())
        {
            count++;
            string text = e.GetProperty("text").GetString()!;
            int[] ids = Ints(e.GetProperty("ids"));
            void Same<T>(string what, T expected, T actual) where T : notnull
            {
                bool eq = expected is int[] a && actual is int[] b ? a.SequenceEqual(b) : expected.Equals(actual);
                if (!eq) failures.Add($"{what} of {JsonSerializer.Serialize(text)}: expected {JsonSerializer.Serialize(expected)}, got {JsonSerializer.Serialize(actual)}");
            }
            Same("ids", ids, tok.Encode(text));
            Same("ids_with_special", Ints(e.GetProperty("ids_with_special")), tok.Encode(text, addSpecialTokens: true));
            Same("decoded", e.GetProperty("decoded").GetString()!, tok.Decode(ids));
            Same("decoded_skip_special", e.GetProperty("decoded_skip_special").GetString()!, tok.Decode(ids, skipSpecialTokens: true));
        }
        return failures;
    }

    public static JsonElement NpmGolden(string name) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureDir, "hf", "tokenizers-npm", name + ".json"))).RootElement;

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    public static List<ChatMessage> Messages(JsonElement e) => e.EnumerateArray()
        .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!,
            m.TryGetProperty("reasoning_content", out var r) ? r.GetString() : null)).ToList();

    public static IEnumerable<object[]> NameData() => Names.Select(n => new object[] { n });
}

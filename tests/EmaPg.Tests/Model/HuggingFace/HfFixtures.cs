using System.Diagnostics;
using System.Text.Json.Nodes;

namespace EmaPg.Tests.Model.HuggingFace;

/// <summary>Paths of the committed transformers goldens and of the real tokenizer files (fetched into the ignored .cache/).</summary>
internal static class HfFixtures
{
    public static readonly string[] Cases =
        ["qwen2-tied", "qwen2-untied-bf16", "qwen2-sharded", "qwen3-tied", "qwen3-untied-f16", "llama3-tied", "llama-bias-untied"];

    public static string RepoRoot { get; } = FindRoot();

    public static string ModelDir(string name) => Path.Combine(RepoRoot, "tests", "EmaPg.Tests", "Fixtures", "hf", "models", name);

    public static JsonObject Golden(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(ModelDir(name), "golden.json")))!.AsObject();

    /// <summary>
    /// .cache/tokenizers/<paramref name="name"/> (qwen3, qwen2_5, llama3), fetched by
    /// tools/goldens/fetch-tokenizers.sh when absent (Llama 3's files are never committed).
    /// </summary>
    public static string TokenizerDir(string name)
    {
        var dir = Path.Combine(RepoRoot, ".cache", "tokenizers", name);
        if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
        {
            lock (FetchGate)
            {
                if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
                {
                    using var p = Process.Start(new ProcessStartInfo("bash", [Path.Combine(RepoRoot, "tools", "goldens", "fetch-tokenizers.sh")])
                    { RedirectStandardOutput = true, RedirectStandardError = true })!;
                    p.WaitForExit();
                    if (p.ExitCode != 0)
                        throw new InvalidOperationException($"fetch-tokenizers.sh failed: {p.StandardError.ReadToEnd()}");
                }
            }
        }
        return dir;
    }

    private static readonly object FetchGate = new();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "EmaPg.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root (EmaPg.slnx) not found above the test binaries");
    }
}

using EmaPg.Model;
using EmaPg.Model.HuggingFace;
using EmaPg.Tokenization;
using static TorchSharp.torch;

namespace EmaPg.Serving;

/// <summary>A loaded model folder (float32) with its tokenizer when the folder has one, its eos ids and the weight version it serves.</summary>
internal sealed class ServedModel : IDisposable
{
    private readonly HfModel _hf;

    private ServedModel(HfModel hf, HfTokenizer? tokenizer, IReadOnlyList<int> eos, string directory, string version)
    {
        _hf = hf;
        Tokenizer = tokenizer;
        EosIds = eos;
        Directory = directory;
        Version = version;
    }

    public CausalLM Model => _hf.Model;
    public HfTokenizer? Tokenizer { get; }
    public IReadOnlyList<int> EosIds { get; }
    public string Directory { get; }
    public string Version { get; }
    public int VocabSize => Model.Config.VocabSize;
    public int MaxPositions => Model.Config.MaxPositionEmbeddings;

    public static ServedModel Load(string directory, string version)
    {
        var full = Path.GetFullPath(directory);
        var hf = HfCheckpoint.Load(full, ScalarType.Float32);
        try
        {
            hf.Model.eval();
            var tokenizer = File.Exists(Path.Combine(full, "tokenizer.json")) ? HfTokenizer.Load(full) : null;
            var eos = HfModelInfo.StopTokenIds(full, hf.Config).Where(i => i >= 0 && i < hf.Model.Config.VocabSize).ToList();
            return new ServedModel(hf, tokenizer, eos, full, version);
        }
        catch
        {
            hf.Dispose();
            throw;
        }
    }

    /// <summary>Frees the weights; the tokenizer stays usable because responses of requests sampled before a reload may still decode with it.</summary>
    public void Dispose() => _hf.Dispose();
}

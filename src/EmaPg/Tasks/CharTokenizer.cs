using EmaPg.Tokenization;

namespace EmaPg.Tasks;

/// <summary>
/// One token per character of a fixed alphabet, after three specials: PAD = 0, BOS = 1, EOS = 2.
/// PAD is 0 so zero-initialised id buffers are padding. A tiny vocabulary keeps the output layer
/// negligible and makes full-vocabulary KL terms exact and cheap. Special tokens have no text: decoding
/// drops them whether or not they are asked to be skipped.
/// </summary>
public sealed class CharTokenizer : ITextTokenizer
{
    private readonly string _alphabet;
    private readonly Dictionary<char, int> _ids;

    public CharTokenizer(string alphabet)
    {
        if (alphabet.Length == 0 || alphabet.Distinct().Count() != alphabet.Length)
            throw new ArgumentException("alphabet must be non-empty with distinct characters", nameof(alphabet));
        _alphabet = alphabet;
        _ids = alphabet.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i + SpecialCount);
    }

    private const int SpecialCount = 3;
    public int VocabSize => _alphabet.Length + SpecialCount;
    public int PadId => 0;
    public int BosId => 1;
    public int EosId => 2;
    public string Alphabet => _alphabet;
    public IReadOnlyList<int> EosTokenIds => [EosId];
    public int? PadTokenId => PadId;
    public int? BosTokenId => BosId;
    public bool AddsBosToken => true;

    /// <summary>One id per character, after BOS when <paramref name="addSpecialTokens"/>. Throws <see cref="ArgumentException"/> on characters outside the alphabet.</summary>
    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        int offset = addSpecialTokens ? 1 : 0;
        var ids = new int[text.Length + offset];
        if (addSpecialTokens) ids[0] = BosId;
        for (int i = 0; i < text.Length; i++)
            ids[i + offset] = _ids.TryGetValue(text[i], out var id) ? id : throw new ArgumentException($"character '{text[i]}' is not in the alphabet \"{_alphabet}\"", nameof(text));
        return ids;
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var id in ids)
        {
            if (id is >= 0 and < SpecialCount) continue;
            int k = id - SpecialCount;
            sb.Append(k >= 0 && k < _alphabet.Length ? _alphabet[k] : '\uFFFD');
        }
        return sb.ToString();
    }

    /// <summary>The character of a non-special id, or null for specials and out-of-range ids.</summary>
    public char? CharOf(int id)
    {
        int k = id - SpecialCount;
        return k >= 0 && k < _alphabet.Length ? _alphabet[k] : null;
    }
}

namespace EmaPg.Tasks;

/// <summary>Maps text to token ids and back; ids 0..VocabSize-1 include the special tokens.</summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int PadId { get; }
    int BosId { get; }
    int EosId { get; }
    /// <summary>Plain text to ids, without BOS/EOS. Throws <see cref="ArgumentException"/> on characters outside the vocabulary.</summary>
    int[] Encode(string text);
    /// <summary>Ids to text; special tokens are dropped. Never throws; unknown ids render as '\uFFFD'.</summary>
    string Decode(IEnumerable<int> ids);
}

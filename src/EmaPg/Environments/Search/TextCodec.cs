using EmaPg.Tokenization;

namespace EmaPg.Environments.Search;

/// <summary>
/// The text ↔ ids functions a multi-turn rollout needs, from any tokenizer of the library (the toy character tokenizer or a
/// Hugging Face tokenizer.json). Encoding adds no special tokens; decoding skips them.
/// </summary>
public sealed record TextCodec(Func<string, int[]> Encode, Func<IReadOnlyList<int>, string> Decode, IReadOnlyList<int> EosIds, int PadId)
{
    public static TextCodec From(ITextTokenizer t) =>
        new(s => t.Encode(s), ids => t.Decode(ids, skipSpecialTokens: true), t.EosTokenIds, t.PaddingId());
}

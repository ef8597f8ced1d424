using EmaPg.Tasks;
using EmaPg.Tokenization;

namespace EmaPg.Environments.Search;

/// <summary>
/// The text ↔ ids functions a multi-turn rollout needs, from either tokenizer of the library: the toy character tokenizer
/// (<see cref="ITokenizer"/>) or a Hugging Face tokenizer.json (<see cref="ITextTokenizer"/>). Encoding adds no special tokens.
/// </summary>
public sealed record TextCodec(Func<string, int[]> Encode, Func<IReadOnlyList<int>, string> Decode, IReadOnlyList<int> EosIds, int PadId)
{
    public static TextCodec From(ITokenizer t) => new(t.Encode, ids => t.Decode(ids), [t.EosId], t.PadId);

    public static TextCodec From(ITextTokenizer t) =>
        new(s => t.Encode(s), ids => t.Decode(ids, skipSpecialTokens: true), t.EosTokenIds, t.PadTokenId ?? t.EosTokenIds[0]);
}

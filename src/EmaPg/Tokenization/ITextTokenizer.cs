namespace EmaPg.Tokenization;

/// <summary>
/// Text ↔ token ids for a language model, with the special ids generation needs. Ids run over
/// 0..VocabSize-1, added tokens included. Implemented by <see cref="HfTokenizer"/> (tokenizer.json).
/// </summary>
public interface ITextTokenizer
{
    /// <summary>Vocabulary size including added tokens (HF's get_vocab_size(with_added_tokens=True)).</summary>
    int VocabSize { get; }
    /// <summary>Ids that end generation: generation_config.json's eos_token_id (int or list) where present, else tokenizer_config's eos_token.</summary>
    IReadOnlyList<int> EosTokenIds { get; }
    /// <summary>tokenizer_config's pad_token, or null.</summary>
    int? PadTokenId { get; }
    /// <summary>tokenizer_config's bos_token, or null (Qwen has none).</summary>
    int? BosTokenId { get; }
    /// <summary>Whether <c>Encode(text, addSpecialTokens: true)</c> starts with <see cref="BosTokenId"/> (the post-processor adds it).</summary>
    bool AddsBosToken { get; }
    /// <summary>HF <c>encode(text, add_special_tokens)</c>: special tokens written in the text become their ids either way.</summary>
    int[] Encode(string text, bool addSpecialTokens = false);
    /// <summary>HF <c>decode(ids, skip_special_tokens)</c>: ids outside the vocabulary are dropped, as HF does.</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false);
}

public static class TextTokenizerExtensions
{
    /// <summary>The id that pads batches: the pad token, else the first end-of-sequence id (Llama 3 has no pad token).</summary>
    public static int PaddingId(this ITextTokenizer t) => t.PadTokenId ?? t.EosTokenIds[0];
}

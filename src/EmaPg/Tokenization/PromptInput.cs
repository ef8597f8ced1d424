using EmaPg.Common;

namespace EmaPg.Tokenization;

/// <summary>
/// What the model verbs take as input: token ids as given, or text tokenized by the model folder's own tokenizer —
/// raw (with the tokenizer's special tokens, as HF's <c>tokenizer(text)</c> adds them) or, with <c>chat</c>, as one user turn
/// rendered by the folder's chat template with the generation prompt (as <c>apply_chat_template(…, add_generation_prompt=True)</c>).
/// The tokenizer is loaded at most once per instance (a load takes 1–2 s), and only when text is involved.
/// </summary>
public sealed class PromptInput(string modelDir) : IDisposable
{
    private HfTokenizer? _tokenizer;

    private HfTokenizer Tokenizer => _tokenizer ??= HfTokenizer.Load(modelDir);

    public int[] ToIds(IReadOnlyList<int>? ids, string? text, bool chat, string textOption)
    {
        if ((ids is null) == (text is null)) throw new UserError($"give exactly one of --ids and {textOption}.");
        if (ids is not null)
        {
            if (chat) throw new UserError($"--chat applies to {textOption}, not to --ids.");
            return [.. ids];
        }
        if (!chat) return Tokenizer.Encode(text!, addSpecialTokens: true);
        var template = Tokenizer.ChatTemplate ?? throw new UserError($"--chat: the tokenizer in '{modelDir}' has no chat template.");
        return Tokenizer.Encode(template.Render([new ChatMessage("user", text!)], addGenerationPrompt: true), addSpecialTokens: false);
    }

    /// <summary>The text of generated ids (special tokens skipped), or null when the folder has no tokenizer.</summary>
    public string? Decode(IReadOnlyList<int> ids) =>
        _tokenizer is null && !File.Exists(Path.Combine(modelDir, "tokenizer.json")) ? null : Tokenizer.Decode(ids, skipSpecialTokens: true);

    public void Dispose() => _tokenizer?.Dispose();
}

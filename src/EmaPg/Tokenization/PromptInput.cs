using EmaPg.Common;

namespace EmaPg.Tokenization;

/// <summary>
/// What the model verbs take as input: token ids as given, or text tokenized by the model folder's own tokenizer —
/// raw (with the tokenizer's special tokens, as HF's <c>tokenizer(text)</c> adds them) or, with <c>chat</c>, as one user turn
/// rendered by the folder's chat template with the generation prompt (as <c>apply_chat_template(…, add_generation_prompt=True)</c>).
/// </summary>
public static class PromptInput
{
    public static int[] ToIds(string modelDir, IReadOnlyList<int>? ids, string? text, bool chat, string textOption)
    {
        if ((ids is null) == (text is null)) throw new UserError($"give exactly one of --ids and {textOption}.");
        if (ids is not null)
        {
            if (chat) throw new UserError($"--chat applies to {textOption}, not to --ids.");
            return [.. ids];
        }
        using var tok = HfTokenizer.Load(modelDir);
        if (!chat) return tok.Encode(text!, addSpecialTokens: true);
        var template = tok.ChatTemplate ?? throw new UserError($"--chat: the tokenizer in '{modelDir}' has no chat template.");
        return tok.Encode(template.Render([new ChatMessage("user", text!)], addGenerationPrompt: true), addSpecialTokens: false);
    }

    /// <summary>The text of generated ids (special tokens skipped), or null when the folder has no tokenizer.</summary>
    public static string? Decode(string modelDir, IReadOnlyList<int> ids)
    {
        if (!File.Exists(Path.Combine(modelDir, "tokenizer.json"))) return null;
        using var tok = HfTokenizer.Load(modelDir);
        return tok.Decode(ids, skipSpecialTokens: true);
    }
}

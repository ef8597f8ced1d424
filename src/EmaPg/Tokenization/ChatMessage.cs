namespace EmaPg.Tokenization;

/// <summary>
/// One chat turn as transformers' apply_chat_template takes it: role ("system", "user", "assistant", "tool")
/// and content; ReasoningContent is Qwen3's optional separate reasoning of an assistant turn (null: absent).
/// </summary>
public sealed record ChatMessage(string Role, string Content, string? ReasoningContent = null);

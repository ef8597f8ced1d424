using System.Text.Json;
using EmaPg.Common;

namespace EmaPg.Tokenization;

/// <summary>One input of `emapg tokenize`: plain text, or a chat to render with the model's template.</summary>
public abstract record TokenizeRequest
{
    public sealed record Text(string Value) : TokenizeRequest;
    public sealed record Chat(IReadOnlyList<ChatMessage> Messages, bool AddGenerationPrompt, bool? EnableThinking) : TokenizeRequest;
}

/// <summary>Its result: the rendered prompt (chats only) and the ids.</summary>
public sealed record TokenizeResult(string? Text, int[] Ids);

/// <summary>
/// `emapg tokenize`'s inputs and their tokenization: a JSONL line is {"text": T} or {"messages": [{"role", "content",
/// "reasoning_content"?}…], "add_generation_prompt": b?, "enable_thinking": b?}; a chat's ids are those of its
/// rendered text without added special tokens (transformers' apply_chat_template(tokenize=True) convention).
/// </summary>
public static class TokenizeRequests
{
    public static TokenizeResult Run(HfTokenizer tokenizer, TokenizeRequest request, bool addSpecialTokens) => request switch
    {
        TokenizeRequest.Text t => new TokenizeResult(null, tokenizer.Encode(t.Value, addSpecialTokens)),
        TokenizeRequest.Chat c => Chat(tokenizer, c),
        _ => throw new ArgumentOutOfRangeException(nameof(request)),
    };

    private static TokenizeResult Chat(HfTokenizer tokenizer, TokenizeRequest.Chat c)
    {
        var template = tokenizer.ChatTemplate ?? throw new UserError("the model has no chat template (tokenizer_config.json chat_template or chat_template.jinja), so 'messages' cannot be rendered.");
        string text = template.Render(c.Messages, c.AddGenerationPrompt, c.EnableThinking);
        return new TokenizeResult(text, tokenizer.Encode(text, addSpecialTokens: false));
    }

    /// <summary>Reads a JSONL file lazily; a malformed line is a <see cref="UserError"/> naming the file and line. Blank lines are skipped.</summary>
    public static IEnumerable<TokenizeRequest> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new UserError($"--input: file '{path}' does not exist.");
        return ReadLines(path);
    }

    private static IEnumerable<TokenizeRequest> ReadLines(string path)
    {
        int n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return ParseLine(line, $"{path}:{n}");
        }
    }

    /// <summary>One JSONL line; <paramref name="where"/> (file:line) prefixes every error.</summary>
    public static TokenizeRequest ParseLine(string line, string where)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(line).RootElement; }
        catch (JsonException e) { throw new UserError($"{where}: malformed JSON ({e.Message})."); }
        if (root.ValueKind != JsonValueKind.Object) throw new UserError($"{where}: each line must be a JSON object with \"text\" or \"messages\".");
        bool hasText = root.TryGetProperty("text", out var text), hasMessages = root.TryGetProperty("messages", out var messages);
        if (hasText == hasMessages) throw new UserError($"{where}: each line needs exactly one of \"text\" or \"messages\".");
        if (hasText)
        {
            RequireKeys(root, where, "text");
            return new TokenizeRequest.Text(String(text, where, "text"));
        }
        RequireKeys(root, where, "messages", "add_generation_prompt", "enable_thinking");
        if (messages.ValueKind != JsonValueKind.Array) throw new UserError($"{where}: \"messages\" must be an array of {{\"role\", \"content\"}} objects.");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw new UserError($"{where}: {at} must be an object with \"role\" and \"content\".");
            RequireKeys(m, $"{where}: {at}", "role", "content", "reasoning_content");
            if (!m.TryGetProperty("role", out var role) || !m.TryGetProperty("content", out var content))
                throw new UserError($"{where}: {at} needs \"role\" and \"content\".");
            string? reasoning = m.TryGetProperty("reasoning_content", out var r) && r.ValueKind != JsonValueKind.Null ? String(r, where, $"{at}.reasoning_content") : null;
            list.Add(new ChatMessage(String(role, where, $"{at}.role"), String(content, where, $"{at}.content"), reasoning));
        }
        return new TokenizeRequest.Chat(list, Bool(root, "add_generation_prompt", where) ?? false, Bool(root, "enable_thinking", where));
    }

    private static void RequireKeys(JsonElement obj, string where, params string[] allowed)
    {
        foreach (var p in obj.EnumerateObject())
            if (!allowed.Contains(p.Name)) throw new UserError($"{where}: unknown key \"{p.Name}\" (allowed: {string.Join(", ", allowed)}).");
    }

    private static string String(JsonElement e, string where, string name) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new UserError($"{where}: \"{name}\" must be a string, got {e.ValueKind.ToString().ToLowerInvariant()}.");

    private static bool? Bool(JsonElement obj, string key, string where)
    {
        if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new UserError($"{where}: \"{key}\" must be true or false, got {v.ValueKind.ToString().ToLowerInvariant()}."),
        };
    }
}

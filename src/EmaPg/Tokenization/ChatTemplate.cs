using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using EmaPg.Common;

namespace EmaPg.Tokenization;

/// <summary>
/// A model's chat template, rendered as transformers' <c>apply_chat_template(messages, tokenize=False,
/// add_generation_prompt, enable_thinking)</c> renders its Jinja source. There is no Jinja engine here: the
/// template is recognised by its content (Qwen2.5 with any default system prompt, Qwen3, Llama 3 with or without
/// the add_generation_prompt condition) and rendered by a faithful C# port of that template; any other template is
/// a <see cref="UserError"/> naming its file.
/// </summary>
public sealed class ChatTemplate
{
    private readonly IChatFormat _format;

    /// <summary>"qwen2.5", "qwen3" or "llama3".</summary>
    public string Format => _format.Name;

    private ChatTemplate(IChatFormat format) => _format = format;

    /// <summary>Recognises <paramref name="template"/> (read from <paramref name="source"/>, named in errors); bosToken is the template's <c>bos_token</c>.</summary>
    public static ChatTemplate Recognise(string template, string source, string? bosToken)
    {
        if (Qwen3ChatFormat.Matches(template)) return new ChatTemplate(new Qwen3ChatFormat());
        if (Qwen25ChatFormat.TryMatch(template) is { } qwen25) return new ChatTemplate(qwen25);
        if (Llama3ChatFormat.TryMatch(template, bosToken) is { } llama3) return new ChatTemplate(llama3);
        throw new UserError($"{source}: unrecognised chat template (sha256 {Sha256(template)[..16]}…); supported are the Qwen2.5, Qwen3 and Llama 3 templates, byte for byte.");
    }

    /// <summary>
    /// The prompt text. enableThinking null leaves it undefined in the template (Qwen3 then thinks); Qwen2.5 and
    /// Llama 3 ignore it, as their templates do.
    /// </summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, bool? enableThinking = null)
    {
        if (messages.Count == 0) throw new UserError("messages: the chat template needs at least one message.");
        // reasoning_content is read by Qwen3's template only; the others ignore it, as their Jinja does.
        for (int i = 0; i < messages.Count; i++)
            if (messages[i].Role is null || messages[i].Content is null) throw new UserError($"messages[{i}]: role and content must be strings.");
        var sb = new StringBuilder();
        _format.Render(sb, messages, addGenerationPrompt, enableThinking);
        return sb.ToString();
    }

    internal static string Sha256(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));
}

internal interface IChatFormat
{
    string Name { get; }
    void Render(StringBuilder sb, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, bool? enableThinking);
}

/// <summary>The ChatML parts Qwen2.5 and Qwen3 share.</summary>
internal static class ChatMl
{
    public static void Turn(StringBuilder sb, string role, string content) => sb.Append("<|im_start|>").Append(role).Append('\n').Append(content).Append("<|im_end|>\n");

    /// <summary>A run of consecutive "tool" messages becomes one user turn of &lt;tool_response&gt; blocks.</summary>
    public static void ToolResponse(StringBuilder sb, IReadOnlyList<ChatMessage> m, int i)
    {
        if (i == 0 || m[i - 1].Role != "tool") sb.Append("<|im_start|>user");
        sb.Append("\n<tool_response>\n").Append(m[i].Content).Append("\n</tool_response>");
        if (i == m.Count - 1 || m[i + 1].Role != "tool") sb.Append("<|im_end|>\n");
    }
}

/// <summary>Qwen2.5's template (without tools): a default system turn unless the first message is one.</summary>
internal sealed class Qwen25ChatFormat(string defaultSystem) : IChatFormat
{
    // The Qwen2.5 template with its default system prompt (the Jinja literal, twice) replaced by {SYSTEM};
    // Qwen2.5, -Coder and -Math differ only there.
    private const string CanonicalSha256 = "66d3eb26ed2326b951a95ba8eceeedc0699431da7679980998d13a4d19d87847";
    private static readonly Regex SystemLiteral = new(@"\{\{- '<\|im_start\|>system\\n((?:[^'\\]|\\.)*)<\|im_end\|>\\n' \}\}", RegexOptions.CultureInvariant);

    public string Name => "qwen2.5";

    public static Qwen25ChatFormat? TryMatch(string template)
    {
        var m = SystemLiteral.Match(template);
        if (!m.Success) return null;
        string literal = m.Groups[1].Value;
        var canonical = template.Replace("'<|im_start|>system\\n" + literal + "<|im_end|>\\n'", "'<|im_start|>system\\n{SYSTEM}<|im_end|>\\n'")
                                .Replace("{{- '" + literal + "' }}", "{{- '{SYSTEM}' }}");
        return ChatTemplate.Sha256(canonical) == CanonicalSha256 ? new Qwen25ChatFormat(Jinja.UnescapeStringLiteral(literal)) : null;
    }

    public void Render(StringBuilder sb, IReadOnlyList<ChatMessage> m, bool addGenerationPrompt, bool? enableThinking)
    {
        ChatMl.Turn(sb, "system", m[0].Role == "system" ? m[0].Content : defaultSystem);
        for (int i = 0; i < m.Count; i++)
        {
            // Roles the template has no branch for render nothing, as in Jinja.
            if (m[i].Role == "user" || (m[i].Role == "system" && i > 0) || m[i].Role == "assistant") ChatMl.Turn(sb, m[i].Role, m[i].Content);
            else if (m[i].Role == "tool") ChatMl.ToolResponse(sb, m, i);
        }
        if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n");
    }
}

/// <summary>
/// Qwen3's template (without tools): assistant turns after the last user query keep their reasoning in
/// &lt;think&gt; blocks, earlier ones lose it; enable_thinking=false pre-fills an empty think block.
/// </summary>
internal sealed class Qwen3ChatFormat : IChatFormat
{
    private const string TemplateSha256 = "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5";

    public string Name => "qwen3";

    public static bool Matches(string template) => ChatTemplate.Sha256(template) == TemplateSha256;

    public void Render(StringBuilder sb, IReadOnlyList<ChatMessage> m, bool addGenerationPrompt, bool? enableThinking)
    {
        if (m[0].Role == "system") ChatMl.Turn(sb, "system", m[0].Content);
        int lastQuery = m.Count - 1;
        for (int i = m.Count - 1; i >= 0; i--)
        {
            var c = m[i].Content;
            if (m[i].Role == "user" && !(c.StartsWith("<tool_response>", StringComparison.Ordinal) && c.EndsWith("</tool_response>", StringComparison.Ordinal)))
            {
                lastQuery = i;
                break;
            }
        }
        for (int i = 0; i < m.Count; i++)
        {
            var msg = m[i];
            if (msg.Role == "user" || (msg.Role == "system" && i > 0)) ChatMl.Turn(sb, msg.Role, msg.Content);
            else if (msg.Role == "assistant")
            {
                string content = msg.Content, reasoning = "";
                if (msg.ReasoningContent is not null) reasoning = msg.ReasoningContent;
                else if (content.Contains("</think>", StringComparison.Ordinal))
                {
                    // content.split('</think>')[-1].lstrip('\n') and content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
                    string before = content[..content.IndexOf("</think>", StringComparison.Ordinal)];
                    content = Py.LStrip(content[(content.LastIndexOf("</think>", StringComparison.Ordinal) + "</think>".Length)..], '\n');
                    before = Py.RStrip(before, '\n');
                    int open = before.LastIndexOf("<think>", StringComparison.Ordinal);
                    reasoning = Py.LStrip(open >= 0 ? before[(open + "<think>".Length)..] : before, '\n');
                }
                sb.Append("<|im_start|>").Append(msg.Role);
                if (i > lastQuery && (i == m.Count - 1 || reasoning.Length > 0))
                    sb.Append("\n<think>\n").Append(Py.Strip(reasoning, '\n')).Append("\n</think>\n\n").Append(Py.LStrip(content, '\n'));
                else
                    sb.Append('\n').Append(content);
                sb.Append("<|im_end|>\n");
            }
            else if (msg.Role == "tool") ChatMl.ToolResponse(sb, m, i);
        }
        if (addGenerationPrompt)
        {
            sb.Append("<|im_start|>assistant\n");
            if (enableThinking == false) sb.Append("<think>\n\n</think>\n\n");
        }
    }
}

/// <summary>Llama 3's template: a header per turn, content trimmed (Jinja's trim = Python's str.strip()), bos_token first.</summary>
internal sealed class Llama3ChatFormat(string bosToken, bool generationPromptAlways) : IChatFormat
{
    private const string Body = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}";
    private const string Prompt = "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

    public string Name => "llama3";

    public static Llama3ChatFormat? TryMatch(string template, string? bosToken)
    {
        // Meta-Llama-3-8B-Instruct appends the prompt under {% if add_generation_prompt %}; some copies always do.
        bool? always = template == Body + Prompt ? true : template == Body + "{% if add_generation_prompt %}" + Prompt + "{% endif %}" ? false : null;
        if (always is null) return null;
        return new Llama3ChatFormat(bosToken ?? throw new UserError("the Llama 3 chat template needs bos_token in tokenizer_config.json."), always.Value);
    }

    public void Render(StringBuilder sb, IReadOnlyList<ChatMessage> m, bool addGenerationPrompt, bool? enableThinking)
    {
        for (int i = 0; i < m.Count; i++)
        {
            if (i == 0) sb.Append(bosToken);
            sb.Append("<|start_header_id|>").Append(m[i].Role).Append("<|end_header_id|>\n\n").Append(Py.Strip(m[i].Content)).Append("<|eot_id|>");
        }
        if (generationPromptAlways || addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
}

/// <summary>Python's str.strip family, which the templates call.</summary>
internal static class Py
{
    /// <summary>Python's str.isspace(): .NET's white space plus U+001C..U+001F (bidi class B/S), which .NET omits.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';

    public static string Strip(string s) => RStrip(LStrip(s));
    public static string LStrip(string s) { int i = 0; while (i < s.Length && IsSpace(s[i])) i++; return s[i..]; }
    public static string RStrip(string s) { int j = s.Length; while (j > 0 && IsSpace(s[j - 1])) j--; return s[..j]; }
    public static string Strip(string s, char c) => s.Trim(c);
    public static string LStrip(string s, char c) => s.TrimStart(c);
    public static string RStrip(string s, char c) => s.TrimEnd(c);
}

internal static class Jinja
{
    /// <summary>The value of a single-quoted Jinja string literal's body (Python escapes: \n, \t, \\, \', \").</summary>
    public static string UnescapeStringLiteral(string body)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < body.Length; i++)
        {
            if (body[i] != '\\' || i + 1 == body.Length) { sb.Append(body[i]); continue; }
            char e = body[++i];
            sb.Append(e switch { 'n' => "\n", 't' => "\t", 'r' => "\r", '\\' => "\\", '\'' => "'", '"' => "\"", _ => "\\" + e });
        }
        return sb.ToString();
    }
}

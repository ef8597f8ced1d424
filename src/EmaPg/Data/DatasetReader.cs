using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using EmaPg.Tokenization;

namespace EmaPg.Data;

/// <summary>
/// Loads a split from JSONL (one object per line) or Parquet (verl's RL files) into examples. Both formats yield
/// rows as JSON objects and share one mapping (<see cref="ExampleMapper"/>). A malformed line or row is a
/// <see cref="UserError"/> naming the file and line/row; an empty split is an error; rows are only ever skipped
/// for being over the prompt limit, and counted in the <see cref="DatasetReport"/>.
/// </summary>
public static class DatasetReader
{
    public static Dataset Load(string path, DatasetOptions options, PromptRenderer renderer)
    {
        options = options.Validated();
        if (!File.Exists(path)) throw new UserError($"dataset file '{path}' does not exist.");
        var ext = Path.GetExtension(path).ToLowerInvariant();
        int blank = 0;
        IEnumerable<(string Origin, JsonObject Row)> rows = ext switch
        {
            ".jsonl" or ".json" => JsonlRows(path, () => blank++),
            ".parquet" => ParquetRows.Read(path),
            _ => throw new UserError($"dataset file '{path}': unknown format '{ext}'; use .jsonl or .parquet."),
        };
        var examples = new List<PromptExample>();
        int count = 0, tooLong = 0, longest = 0;
        foreach (var (origin, row) in rows)
        {
            count++;
            var ex = ExampleMapper.Map(row, origin, options);
            var text = Render(ex, options, renderer);
            int tokens = renderer.CountTokens(text);
            if (options.MaxPromptTokens > 0 && tokens > options.MaxPromptTokens)
            {
                if (options.OverLength == OverLengthPolicy.Error)
                    throw new UserError($"{origin}: the prompt has {tokens} tokens, more than --max-prompt-length {options.MaxPromptTokens} (skip such prompts with --over-length skip).");
                tooLong++;
                continue;
            }
            longest = Math.Max(longest, tokens);
            examples.Add(ex with { PromptText = text, PromptTokens = tokens });
        }
        if (count == 0) throw new UserError($"dataset file '{path}' holds no examples (an empty split).");
        if (examples.Count == 0)
            throw new UserError($"dataset file '{path}': all {count} prompts are longer than --max-prompt-length {options.MaxPromptTokens}.");
        return new Dataset(examples, new DatasetReport(path, count, examples.Count, tooLong, blank, longest));
    }

    /// <summary>The prompt text: the suffix appended to the last user message, then the chat template or plain text.</summary>
    public static string Render(PromptExample ex, DatasetOptions options, PromptRenderer renderer)
    {
        var messages = ex.Messages;
        if (options.InstructionSuffix is { Length: > 0 } suffix)
        {
            int last = -1;
            for (int i = 0; i < messages.Count; i++) if (messages[i].Role == "user") last = i;
            if (last < 0) throw new UserError($"{ex.Origin}: the prompt has no user message to append the instruction to.");
            messages = [.. messages.Select((m, i) => i == last ? m with { Content = m.Content + " " + suffix } : m)];
        }
        return options.NoChatTemplate ? PromptRenderer.JoinContents(messages) : renderer.ChatTemplate(messages);
    }

    private static IEnumerable<(string, JsonObject)> JsonlRows(string path, Action onBlank)
    {
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) { onBlank(); continue; }
            JsonNode? node;
            try { node = JsonNode.Parse(text); }
            catch (JsonException e) { throw new UserError($"{path}:{line}: not valid JSON ({e.Message})."); }
            if (node is not JsonObject o) throw new UserError($"{path}:{line}: expected a JSON object, got {Clip(text)}.");
            yield return ($"{path}:{line}", o);
        }
    }

    internal static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "…";
}

/// <summary>Maps one row (verl's RL schema or the plain one) to an example; every problem names the row and the field.</summary>
public static class ExampleMapper
{
    public static PromptExample Map(JsonObject row, string origin, DatasetOptions o)
    {
        var (promptField, prompt) = Find(row, o.PromptField, DatasetOptions.DefaultPromptFields, origin, "prompt");
        var (answerField, answer) = Find(row, o.AnswerField, DatasetOptions.DefaultAnswerFields, origin, "ground truth");
        var truths = GroundTruths.FromJson(answer, $"{origin}: field '{answerField}'");
        if (truths.Count == 0) throw new UserError($"{origin}: field '{answerField}' holds no ground truth.");
        var dataSource = Get(row, o.DataSourceField);
        if (dataSource is not null and not JsonValue) throw new UserError($"{origin}: field '{o.DataSourceField}' must be a string.");
        var messages = Messages(prompt!, origin, promptField);
        string? solution = null;
        if (o.SolutionField is not null)
        {
            var s = Get(row, o.SolutionField) ?? throw new UserError($"{origin}: no solution field '{o.SolutionField}' (fields: {string.Join(", ", row.Select(p => p.Key))}).");
            solution = Text(s, origin, o.SolutionField);
        }
        else if (DatasetOptions.DefaultSolutionFields.Select(f => (f, v: Get(row, f))).FirstOrDefault(x => x.v is not null) is { v: not null } found)
            solution = Text(found.v, origin, found.f);
        else if (messages.Count > 1 && messages[^1].Role == "assistant")
        {
            // A whole conversation: the last assistant turn is the response to learn, the turns before it the prompt.
            solution = messages[^1].Content;
            messages = [.. messages.Take(messages.Count - 1)];
        }
        return new PromptExample
        {
            Messages = messages,
            Solution = solution,
            GroundTruths = truths,
            DataSource = dataSource?.ToString(),
            ExtraInfo = Get(row, o.ExtraInfoField)?.DeepClone(),
            Origin = origin,
        };
    }

    private static (string Field, JsonNode? Value) Find(JsonObject row, string? field, string[] defaults, string origin, string what)
    {
        if (field is not null)
        {
            var v = Get(row, field);
            return v is null ? throw new UserError($"{origin}: no {what} field '{field}' (fields: {string.Join(", ", row.Select(p => p.Key))}).") : (field, v);
        }
        foreach (var d in defaults)
            if (Get(row, d) is { } v) return (d, v);
        throw new UserError($"{origin}: no {what} field; looked for {string.Join(", ", defaults)} (fields: {string.Join(", ", row.Select(p => p.Key))}); name it with --{(what == "prompt" ? "prompt" : "answer")}-field.");
    }

    private static string Text(JsonNode node, string origin, string field) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw new UserError($"{origin}: field '{field}' must be a string.");

    /// <summary>The value at a dotted path, null when any part is missing or null.</summary>
    internal static JsonNode? Get(JsonObject row, string path)
    {
        JsonNode? cur = row;
        foreach (var part in path.Split('.'))
        {
            if (cur is not JsonObject obj || !obj.TryGetPropertyValue(part, out cur)) return null;
        }
        return cur;
    }

    private static IReadOnlyList<ChatMessage> Messages(JsonNode prompt, string origin, string field)
    {
        if (prompt is JsonValue v && v.GetValueKind() == JsonValueKind.String) return [new ChatMessage("user", v.GetValue<string>())];
        if (prompt is not JsonArray a || a.Count == 0)
            throw new UserError($"{origin}: field '{field}' must be a string or a non-empty list of {{\"role\", \"content\"}} messages.");
        var list = new List<ChatMessage>(a.Count);
        foreach (var m in a)
        {
            if (m is not JsonObject mo || mo["role"] is not JsonValue r || r.GetValueKind() != JsonValueKind.String
                || mo["content"] is not JsonValue c || c.GetValueKind() != JsonValueKind.String)
                throw new UserError($"{origin}: field '{field}': message {list.Count} must be an object with string \"role\" and \"content\", got {DatasetReader.Clip(m?.ToJsonString() ?? "null")}.");
            list.Add(new ChatMessage(r.GetValue<string>(), c.GetValue<string>()));
        }
        return list;
    }
}

using System.Collections;
using System.Text.Json.Nodes;
using EmaPg.Common;
using Parquet;
using Parquet.Serialization;

namespace EmaPg.Data;

/// <summary>Rows of a Parquet file as JSON objects (structs → objects, lists → arrays), read with Parquet.Net's untyped reader.</summary>
internal static class ParquetRows
{
    public static IEnumerable<(string Origin, JsonObject Row)> Read(string path)
    {
        IList<Dictionary<string, object>> data;
        try
        {
            using var stream = File.OpenRead(path);
            var result = ParquetSerializer.DeserializeUntypedAsync(stream, new ParquetOptions()).GetAwaiter().GetResult();
            data = result.Data;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new UserError($"{path}: not a readable Parquet file ({e.Message}).");
        }
        for (int i = 0; i < data.Count; i++)
        {
            var origin = $"{path}: row {i}";
            yield return (origin, ToJson(data[i], origin) as JsonObject ?? throw new UserError($"{origin}: not a record."));
        }
    }

    private static JsonNode? ToJson(object? v, string origin) => v switch
    {
        null => null,
        string s => JsonValue.Create(s),
        ReadOnlyMemory<char> m => JsonValue.Create(m.ToString()),
        bool b => JsonValue.Create(b),
        int or long or short or sbyte or byte or uint or ulong or ushort => JsonValue.Create(Convert.ToInt64(v)),
        float f => JsonValue.Create((double)f),
        double d => JsonValue.Create(d),
        decimal m => JsonValue.Create(m),
        IDictionary<string, object?> dict => new JsonObject(dict.Select(kv => KeyValuePair.Create(kv.Key, ToJson(kv.Value, origin)))),
        IDictionary dict => new JsonObject(dict.Keys.Cast<object>().Select(k => KeyValuePair.Create(k.ToString()!, ToJson(dict[k], origin)))),
        IEnumerable e => new JsonArray([.. e.Cast<object?>().Select(x => ToJson(x, origin))]),
        _ => throw new UserError($"{origin}: unsupported Parquet value of type {v.GetType().Name}."),
    };
}

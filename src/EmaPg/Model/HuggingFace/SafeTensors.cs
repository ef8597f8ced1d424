using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmaPg.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Model.HuggingFace;

/// <summary>One tensor's entry in a safetensors header; offsets are absolute positions in the file.</summary>
public sealed record SafeTensorEntry(string Name, string File, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>
/// The safetensors format (8-byte little-endian header length, a JSON header mapping each name to
/// dtype, shape and data_offsets, then the raw little-endian bytes). Reading streams one tensor at a
/// time through a small fixed buffer straight into an already allocated tensor, so loading never holds
/// a whole file (or even a whole tensor) twice; every header is validated against the file's size first
/// so a truncated or corrupt file fails before any parameter is touched.
/// </summary>
public static class SafeTensors
{
    /// <summary>Bytes moved per read/convert step: bounds the loader's extra memory independently of tensor size.</summary>
    internal const int ChunkBytes = 16 << 20;

    private static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
    {
        ["F32"] = (ScalarType.Float32, 4),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["F16"] = (ScalarType.Float16, 2),
    };

    /// <summary>The safetensors dtype name of a floating tensor type this library stores.</summary>
    public static string DTypeName(ScalarType t) =>
        DTypes.FirstOrDefault(kv => kv.Value.Type == t).Key ?? throw new UserError($"dtype {t} cannot be stored; use float32, bfloat16 or float16.");

    /// <summary>Parses and validates the header of <paramref name="path"/>: JSON, dtype names, shapes against byte lengths, offsets inside the file and not overlapping.</summary>
    public static IReadOnlyList<SafeTensorEntry> ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new UserError($"safetensors file '{path}' does not exist.");
        using var fs = File.OpenRead(path);
        long fileLength = fs.Length;
        Span<byte> lenBytes = stackalloc byte[8];
        if (fileLength < 8 || fs.ReadAtLeast(lenBytes, 8, throwOnEndOfStream: false) != 8)
            throw Corrupt(path, "shorter than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLength < 2 || headerLength > 100_000_000 || 8 + (long)headerLength > fileLength)
            throw Corrupt(path, $"header length {headerLength} does not fit a file of {fileLength} bytes");
        var headerBytes = new byte[headerLength];
        fs.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength;
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes)?.AsObject() ?? throw new JsonException("null header"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            throw Corrupt(path, $"header is not a JSON object ({e.Message})");
        }

        var entries = new List<SafeTensorEntry>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            try
            {
                var o = node!.AsObject();
                var dtype = o["dtype"]!.GetValue<string>();
                var shape = o["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = o["data_offsets"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0])
                    throw Corrupt(path, $"tensor '{name}' has invalid data_offsets [{string.Join(", ", offsets)}]");
                if (shape.Any(d => d < 0))
                    throw Corrupt(path, $"tensor '{name}' has a negative dimension in shape [{string.Join(", ", shape)}]");
                if (dataStart + offsets[1] > fileLength)
                    throw new UserError($"safetensors file '{path}' is truncated: tensor '{name}' ends at byte {dataStart + offsets[1]}, the file has {fileLength}.");
                if (DTypes.TryGetValue(dtype, out var dt) && shape.Aggregate(1L, (a, b) => a * b) * dt.Size != offsets[1] - offsets[0])
                    throw Corrupt(path, $"tensor '{name}' has {offsets[1] - offsets[0]} bytes, its shape [{string.Join(", ", shape)}] of {dtype} needs {shape.Aggregate(1L, (a, b) => a * b) * dt.Size}");
                entries.Add(new SafeTensorEntry(name, path, dtype, shape, dataStart + offsets[0], dataStart + offsets[1]));
            }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException)
            {
                throw Corrupt(path, $"tensor '{name}' has a malformed entry ({e.Message})");
            }
        }
        var sorted = entries.OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw Corrupt(path, $"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap");
        return entries;
    }

    /// <summary>
    /// Copies the tensor <paramref name="entry"/> into <paramref name="target"/> (same shape, any
    /// floating dtype, any device), converting its dtype on the way. Moves at most
    /// <see cref="ChunkBytes"/> at a time.
    /// </summary>
    public static void ReadInto(SafeTensorEntry entry, Tensor target)
    {
        if (!DTypes.TryGetValue(entry.DType, out var dt))
            throw new UserError($"'{entry.File}': tensor '{entry.Name}' has dtype {entry.DType}; supported: {string.Join(", ", DTypes.Keys)}.");
        if (!entry.Shape.SequenceEqual(target.shape))
            throw new UserError($"'{entry.File}': tensor '{entry.Name}' has shape [{string.Join(", ", entry.Shape)}], the model expects [{string.Join(", ", target.shape)}].");
        using var noGrad = no_grad();
        using var handle = File.OpenHandle(entry.File);
        using var flat = target.view(-1);
        long numel = flat.numel();
        long chunkElems = Math.Max(1, ChunkBytes / dt.Size);
        var buffer = new byte[Math.Min(numel, chunkElems) * dt.Size];
        for (long start = 0; start < numel; start += chunkElems)
        {
            long n = Math.Min(chunkElems, numel - start);
            var span = buffer.AsSpan(0, checked((int)(n * dt.Size)));
            long offset = entry.Begin + start * dt.Size;
            int read = 0;
            while (read < span.Length)
            {
                int got = RandomAccess.Read(handle, span[read..], offset + read);
                if (got == 0) throw new UserError($"safetensors file '{entry.File}' is truncated inside tensor '{entry.Name}'.");
                read += got;
            }
            using var chunk = empty([n], dtype: dt.Type);
            chunk.bytes = span;
            using var dst = flat.narrow(0, start, n);
            dst.copy_(chunk);
        }
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (name, tensor; stored in the tensor's own dtype) as one
    /// safetensors file with <c>{"format": "pt"}</c> metadata, which transformers requires. The header
    /// is padded with spaces to a multiple of 8 bytes as the reference writer does.
    /// </summary>
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            long bytes = t.numel() * t.element_size();
            header[name] = new JsonObject
            {
                ["dtype"] = DTypeName(t.dtype),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)JsonValue.Create(d)).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + bytes)),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        json.CopyTo(headerBytes, 0);
        headerBytes.AsSpan(json.Length).Fill((byte)' ');

        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        fs.Write(len);
        fs.Write(headerBytes);
        using var noGrad = no_grad();
        foreach (var (_, t) in tensors)
        {
            using var flat = t.detach().reshape(-1);
            long numel = flat.numel();
            long chunkElems = Math.Max(1, ChunkBytes / t.element_size());
            for (long start = 0; start < numel; start += chunkElems)
            {
                using var chunk = flat.narrow(0, start, Math.Min(chunkElems, numel - start)).cpu().clone();
                fs.Write(chunk.bytes);
            }
        }
        fs.Flush(flushToDisk: true);
    }

    private static UserError Corrupt(string path, string what) => new($"safetensors file '{path}' is corrupt: {what}.");
}

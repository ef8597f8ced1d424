using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace EmaPg.Common;

/// <summary>A damaged or foreign file: the message names the file and what is wrong; never a stack trace.</summary>
public sealed class CorruptFileError(string path, string problem) : UserError($"'{path}' is damaged or not an EmaPg file: {problem}.")
{
    public string FilePath { get; } = path;
}

/// <summary>
/// The one on-disk format for tensors the library writes itself (training checkpoints, cold-start caches):
/// magic and format version, a JSON header (kind, free-form metadata, name/dtype/shape/offset of every tensor),
/// the raw little-endian tensor bytes, and a trailer with the SHA-256 of everything before it. A reader
/// verifies the checksum over the whole file before it trusts a single byte, so truncation, flipped bits
/// in the header, a shape field or tensor data are all reported as <see cref="CorruptFileError"/> naming the
/// file, never loaded silently. Writes are atomic (<see cref="AtomicFile"/>).
/// </summary>
public static class TensorFile
{
    public const int FormatVersion = 2;
    private static readonly byte[] Magic = "EMAPGTF\n"u8.ToArray();
    private static readonly byte[] EndMagic = "EMAPGEND"u8.ToArray();
    private const int HashBytes = 32;
    private static readonly long MinLength = Magic.Length + 4 + 4 + HashBytes + EndMagic.Length;

    public static void Write(string path, string kind, JsonObject metadata, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var list = tensors.ToList();
        if (list.Select(t => t.Name).Distinct().Count() != list.Count) throw new ArgumentException("tensor names must be unique");
        long offset = 0;
        var entries = new JsonArray();
        foreach (var (name, t) in list)
        {
            long nbytes = t.numel() * t.element_size();
            entries.Add(new JsonObject
            {
                ["name"] = name, ["dtype"] = t.dtype.ToString(),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)JsonValue.Create(d)).ToArray()),
                ["offset"] = offset, ["nbytes"] = nbytes,
            });
            offset += nbytes;
        }
        var header = Encoding.UTF8.GetBytes(new JsonObject { ["kind"] = kind, ["metadata"] = metadata.DeepClone(), ["tensors"] = entries }.ToJsonString());
        AtomicFile.Write(path, s =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            void Put(ReadOnlySpan<byte> b) { s.Write(b); hash.AppendData(b); }
            Put(Magic);
            Put(BitConverter.GetBytes(FormatVersion));
            Put(BitConverter.GetBytes(header.Length));
            Put(header);
            foreach (var (_, t) in list)
            {
                using var c = t.detach().cpu().contiguous();
                Put(c.bytes);
            }
            s.Write(hash.GetHashAndReset());
            s.Write(EndMagic);
        });
    }

    /// <summary>Opens and fully verifies <paramref name="path"/> (checksum, format version, header, offsets); throws <see cref="CorruptFileError"/> otherwise.</summary>
    public static Reader Open(string path, string expectedKind)
    {
        if (!File.Exists(path)) throw new UserError($"'{path}' does not exist.");
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            long len = fs.Length;
            if (len < MinLength) throw new CorruptFileError(path, $"only {len} bytes (truncated)");
            Span<byte> head = stackalloc byte[Magic.Length + 8];
            fs.ReadExactly(head);
            if (!head[..Magic.Length].SequenceEqual(Magic)) throw new CorruptFileError(path, "unknown file signature");
            int version = BitConverter.ToInt32(head[Magic.Length..]);
            if (version != FormatVersion) throw new CorruptFileError(path, $"format version {version}, this build reads version {FormatVersion}");
            int headerLen = BitConverter.ToInt32(head[(Magic.Length + 4)..]);
            var trailer = new byte[HashBytes + EndMagic.Length];
            fs.Position = len - trailer.Length;
            fs.ReadExactly(trailer);
            if (!trailer.AsSpan(HashBytes).SequenceEqual(EndMagic)) throw new CorruptFileError(path, "no end marker (truncated or torn write)");
            fs.Position = 0;
            var hash = ComputeHash(fs, len - trailer.Length);
            if (!hash.AsSpan().SequenceEqual(trailer.AsSpan(0, HashBytes))) throw new CorruptFileError(path, "checksum mismatch (bytes changed after writing)");
            long dataStart = Magic.Length + 8L + headerLen, dataLen = len - trailer.Length - dataStart;
            if (headerLen <= 0 || dataLen < 0) throw new CorruptFileError(path, "header length out of range");
            fs.Position = Magic.Length + 8;
            var headerBytes = new byte[headerLen];
            fs.ReadExactly(headerBytes);
            var reader = new Reader(path, fs, dataStart, dataLen, headerBytes);
            if (reader.Kind != expectedKind) throw new UserError($"'{path}' holds a {reader.Kind}, not a {expectedKind}.");
            return reader;
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    private static byte[] ComputeHash(Stream s, long count)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        while (count > 0)
        {
            int n = s.Read(buf, 0, (int)Math.Min(buf.Length, count));
            if (n <= 0) throw new EndOfStreamException();
            hash.AppendData(buf, 0, n);
            count -= n;
        }
        return hash.GetHashAndReset();
    }

    public sealed record Entry(string Name, ScalarType DType, long[] Shape, long Offset, long NBytes);

    /// <summary>A verified file: its kind, metadata and tensor table; tensors are read on demand.</summary>
    public sealed class Reader : IDisposable
    {
        private readonly FileStream _fs;
        private readonly long _dataStart;
        public string Path { get; }
        public string Kind { get; }
        public JsonObject Metadata { get; }
        public IReadOnlyDictionary<string, Entry> Tensors { get; }

        internal Reader(string path, FileStream fs, long dataStart, long dataLen, byte[] header)
        {
            Path = path;
            _fs = fs;
            _dataStart = dataStart;
            try
            {
                var h = JsonNode.Parse(header)!.AsObject();
                Kind = h["kind"]!.GetValue<string>();
                Metadata = h["metadata"]!.AsObject();
                var entries = new Dictionary<string, Entry>();
                foreach (var n in h["tensors"]!.AsArray())
                {
                    var e = new Entry(n!["name"]!.GetValue<string>(), Enum.Parse<ScalarType>(n["dtype"]!.GetValue<string>()),
                        n["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray(), n["offset"]!.GetValue<long>(), n["nbytes"]!.GetValue<long>());
                    long count = e.Shape.Aggregate(1L, (a, b) => checked(a * b));
                    if (e.Shape.Any(d => d < 0) || e.Offset < 0 || e.NBytes != count * ElementSize(e.DType) || e.Offset + e.NBytes > dataLen)
                        throw new FormatException($"tensor '{e.Name}' has an inconsistent shape or offset");
                    entries.Add(e.Name, e);
                }
                Tensors = entries;
            }
            catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or ArgumentException or FormatException or OverflowException)
            {
                throw new CorruptFileError(path, $"unreadable header ({e.Message})");
            }
        }

        /// <summary>Copies the stored tensor <paramref name="name"/> into <paramref name="target"/> (same shape; dtype converted).</summary>
        public void ReadInto(string name, Tensor target)
        {
            if (!Tensors.TryGetValue(name, out var e)) throw new UserError($"'{Path}' has no tensor '{name}'.");
            if (!e.Shape.SequenceEqual(target.shape))
                throw new UserError($"'{Path}': tensor '{name}' has shape [{string.Join(",", e.Shape)}], expected [{string.Join(",", target.shape)}].");
            using var src = Read(e);
            using var _ = no_grad();
            target.copy_(src);
        }

        public Tensor Read(Entry e)
        {
            var bytes = new byte[e.NBytes];
            _fs.Position = _dataStart + e.Offset;
            _fs.ReadExactly(bytes);
            var t = empty(e.Shape, dtype: e.DType);
            if (e.NBytes > 0) t.bytes = bytes;
            return t;
        }

        public void Dispose() => _fs.Dispose();
    }

    private static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new FormatException($"unsupported dtype {t}"),
    };
}

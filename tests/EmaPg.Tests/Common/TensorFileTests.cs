using System.Text;
using System.Text.Json.Nodes;
using EmaPg.Common;
using static TorchSharp.torch;

namespace EmaPg.Tests.Common;

public class TensorFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-tensorfile-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteSample()
    {
        var path = Path.Combine(_dir, $"{Guid.NewGuid():N}.bin");
        using var a = arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        using var b = tensor(new double[] { 1.5, -2.25 });
        TensorFile.Write(path, "test", new JsonObject { ["note"] = "x" }, [("a", a), ("b", b)]);
        return path;
    }

    [Fact]
    public void RoundTripsNamesDtypesShapesAndBytes()
    {
        var path = WriteSample();
        using var r = TensorFile.Open(path, "test");
        Assert.Equal("x", r.Metadata["note"]!.GetValue<string>());
        using var a = zeros(3, 4);
        using var b = zeros(2, dtype: ScalarType.Float64);
        r.ReadInto("a", a);
        r.ReadInto("b", b);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (float)i), a.data<float>().ToArray());
        Assert.Equal(new[] { 1.5, -2.25 }, b.data<double>().ToArray());
        Assert.Equal(ScalarType.Float64, r.Tensors["b"].DType);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));   // the temporary file was renamed, not left behind
    }

    public static TheoryData<string> Damages => ["truncate-half", "truncate-1", "flip-header", "flip-shape", "flip-data", "flip-trailer", "version", "empty", "append"];

    [Theory]
    [MemberData(nameof(Damages))]
    public void EveryDamageIsAOneLineErrorNamingTheFile(string damage)
    {
        var path = WriteSample();
        var bytes = File.ReadAllBytes(path);
        int headerAt = 16, shapeAt = IndexOf(bytes, "\"shape\":[3") + 9, dataAt = bytes.Length - 40 - 4;
        switch (damage)
        {
            case "truncate-half": bytes = bytes[..(bytes.Length / 2)]; break;
            case "truncate-1": bytes = bytes[..^1]; break;
            case "flip-header": bytes[headerAt + 3] ^= 0x20; break;
            case "flip-shape": bytes[shapeAt] = (byte)'9'; break;
            case "flip-data": bytes[dataAt] ^= 0x01; break;
            case "flip-trailer": bytes[^20] ^= 0xFF; break;
            case "version": bytes[8] = 7; break;
            case "empty": bytes = []; break;
            case "append": bytes = [.. bytes, 0]; break;
        }
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CorruptFileError>(() => TensorFile.Open(path, "test").Dispose());
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AnotherKindIsRefused()
    {
        var path = WriteSample();
        Assert.Contains("not a model", Assert.ThrowsAny<UserError>(() => TensorFile.Open(path, "model").Dispose()).Message);
    }

    private static int IndexOf(byte[] haystack, string needle)
    {
        var n = Encoding.UTF8.GetBytes(needle);
        for (int i = 0; i + n.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, n.Length).SequenceEqual(n)) return i;
        throw new InvalidOperationException(needle);
    }
}

public class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emapg-atomic-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void AFailedWriteLeavesTheTargetAndNoTemporaryFile()
    {
        var path = Path.Combine(_dir, "checkpoint.bin");
        File.WriteAllText(path, "previous");
        // As a full disk does: some bytes are written, then the write fails.
        Assert.Throws<IOException>(() => AtomicFile.Write(path, s => { s.Write(new byte[1000]); throw new IOException("No space left on device"); }));
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
        Assert.NotEqual(AtomicFile.TempPathFor(path), AtomicFile.TempPathFor(path));   // two writers never share a temporary file
    }
}

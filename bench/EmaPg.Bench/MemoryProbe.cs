using TorchSharp;
using static TorchSharp.torch;

namespace EmaPg.Bench;

/// <summary>
/// The two ways the benchmark measures memory on the CPU, where libtorch keeps no allocator statistics.
/// <para>
/// (1) <b>Peak RSS above baseline</b> (measured): before a run the kernel's peak-RSS counter is reset
/// (<c>echo 5 &gt; /proc/self/clear_refs</c>, Linux ≥ 4.0), the resident set VmRSS is read, the run executes,
/// and VmHWM (the new peak) minus that baseline is the extra physical memory the run needed at its worst moment:
/// forward intermediates, backward temporaries, the gradient, everything. It is defensible for the big tensors
/// because libtorch's CPU allocator has no cache (posix_memalign/free) and glibc serves every block above its
/// mmap threshold (at most 32 MiB) with mmap and returns it with munmap on free, so an [N, |V|] tensor shows up in
/// RSS when it is written and leaves it when it is freed. It is noisy below a few MiB (the managed heap, malloc
/// arenas, page granularity), so it means nothing for tiny problems, and it needs Linux; elsewhere it is null.
/// </para>
/// <para>
/// (2) <b>Tracked forward bytes</b> (counted): the distinct storages of every tensor created inside the run's
/// <see cref="DisposeScope"/> up to the end of the forward pass, excluding the storages of the inputs. In
/// TorchSharp every intermediate stays alive until its scope is disposed, so these bytes are all resident at
/// the end of the forward; it is a deterministic lower bound of the peak (backward temporaries and the gradient
/// are not in it) and works on any device. Views (detach, squeeze) share their base's storage and are counted once.
/// </para>
/// </summary>
public static class MemoryProbe
{
    private const string ClearRefs = "/proc/self/clear_refs";
    private const string Status = "/proc/self/status";

    /// <summary>Whether the peak-RSS counter can be reset and read on this machine.</summary>
    public static bool RssAvailable { get; } = Probe();

    private static bool Probe()
    {
        try { ResetPeak(); return ReadKb("VmHWM:") is not null && ReadKb("VmRSS:") is not null; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Resets VmHWM to the current VmRSS (clear_refs value 5).</summary>
    public static void ResetPeak() => File.WriteAllText(ClearRefs, "5");

    /// <summary>Current resident set, bytes.</summary>
    public static long RssBytes() => (ReadKb("VmRSS:") ?? 0) * 1024;

    /// <summary>Peak resident set since the last <see cref="ResetPeak"/>, bytes.</summary>
    public static long PeakRssBytes() => (ReadKb("VmHWM:") ?? 0) * 1024;

    private static long? ReadKb(string key)
    {
        foreach (var line in File.ReadLines(Status))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        return null;
    }

    /// <summary>Bytes of the distinct storages held by the tensors of <paramref name="scope"/>, minus <paramref name="exclude"/>.</summary>
    public static long TrackedBytes(DisposeScope scope, IEnumerable<Tensor> exclude)
    {
        var tensors = scope.DisposablesView.OfType<Tensor>().Where(t => !t.IsInvalid).ToList();
        using var inner = NewDisposeScope();
        var skip = exclude.Select(t => StorageOf(t).Ptr).ToHashSet();
        var seen = new Dictionary<IntPtr, long>();
        foreach (var t in tensors)
        {
            var (ptr, bytes) = StorageOf(t);
            if (ptr == IntPtr.Zero || skip.Contains(ptr)) continue;
            seen[ptr] = Math.Max(seen.GetValueOrDefault(ptr), bytes);
        }
        return seen.Values.Sum();
    }

    /// <summary>Bytes of a tensor's own elements (numel × element size), not of its storage.</summary>
    public static long Bytes(Tensor t) => t.numel() * t.element_size();

    /// <summary>The base pointer and byte size of a tensor's storage (one per allocation, shared by views).</summary>
    private static (IntPtr Ptr, long Bytes) StorageOf(Tensor t)
    {
        if (t.numel() == 0) return (IntPtr.Zero, 0);
        // storage<T>() needs T to match the dtype; the benchmark's tensors are float32/64, int64 or bool.
        torch.Storage s = t.dtype switch
        {
            ScalarType.Float32 => t.storage<float>(),
            ScalarType.Float64 => t.storage<double>(),
            ScalarType.Int64 => t.storage<long>(),
            ScalarType.Int32 => t.storage<int>(),
            ScalarType.Bool => t.storage<bool>(),
            ScalarType.Byte => t.storage<byte>(),
            _ => throw new NotSupportedException($"tracked bytes: dtype {t.dtype} is not supported"),
        };
        return (s.data_ptr(), (long)s.nbytes());
    }
}

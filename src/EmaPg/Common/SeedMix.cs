namespace EmaPg.Common;

/// <summary>
/// Derives independent, reproducible seeds from (seed, counters). Must be stable across processes, which
/// rules out System.HashCode (randomised per process): a resumed run has to re-draw exactly the prompts and
/// samples the uninterrupted run drew. SplitMix64's finaliser over the packed inputs.
/// </summary>
public static class SeedMix
{
    public static ulong Mix(long seed, long a, long b)
    {
        ulong z = (ulong)seed;
        z = Step(z ^ Step((ulong)a + 0x9E3779B97F4A7C15UL));
        z = Step(z ^ Step((ulong)b + 0xBF58476D1CE4E5B9UL));
        return z;
    }

    /// <summary>As <see cref="Mix"/>, folded into a non-negative int for System.Random.</summary>
    public static int MixInt(long seed, long a, long b) => (int)(Mix(seed, a, b) >> 33);

    /// <summary>
    /// A non-negative 63-bit seed from any number of parts (hash-combine, then SplitMix64's finaliser after each part):
    /// the studies' cells get seeds that do not depend on the order they run in.
    /// </summary>
    public static long Combine(params long[] parts)
    {
        ulong h = Golden;
        foreach (var p in parts)
            h = Finalize(h ^ ((ulong)p + Golden + (h << 6) + (h >> 2)));
        return (long)(h & 0x7FFFFFFFFFFFFFFFUL);
    }

    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    private static ulong Step(ulong z) => Finalize(z + Golden);

    private static ulong Finalize(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

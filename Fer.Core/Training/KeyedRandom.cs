namespace Fer.Core.Training;

/// <summary>
/// A small counter-free random stream (SplitMix64) whose start is a pure function of its keys, e.g.
/// (seed, epoch, batch). Training draws its batch order and augmentation from such streams so that any epoch can
/// be reproduced without replaying the ones before it (resume needs no hidden generator state), and so that the
/// numbers do not depend on .NET's System.Random implementation.
/// </summary>
internal struct KeyedRandom
{
    private ulong _state;

    public KeyedRandom(long seed, params ReadOnlySpan<long> keys)
    {
        ulong s = Mix((ulong)seed ^ 0x6A09E667F3BCC909UL);
        foreach (var k in keys) s = Mix(s ^ Mix((ulong)k + 0x9E3779B97F4A7C15UL));
        _state = s;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [-limit, limit).</summary>
    public double NextSymmetric(double limit) => (2 * NextDouble() - 1) * limit;

    /// <summary>Uniform integer in [0, n), without modulo bias.</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        ulong bound = (ulong)n, threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            if (r >= threshold) return (int)(r % bound);
        }
    }

    /// <summary>A uniformly random permutation of 0..n-1 (Fisher-Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    /// <summary>A non-negative 63-bit seed for torch.manual_seed.</summary>
    public long NextSeed() => (long)(NextUInt64() >> 1);
}

using Fer.Core.Data;

namespace Fer.Bench;

/// <summary>Face sets for benchmarks whose figures do not depend on what the faces show.</summary>
internal static class BenchFaces
{
    /// <summary><paramref name="count"/> faces of uniformly random pixels and labels, seeded.</summary>
    public static FaceSet Random(int count, int seed, int side = 48, int classes = 7)
    {
        var random = new System.Random(seed);
        var pixels = new byte[count * side * side];
        random.NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(_ => random.Next(classes)).ToArray();
        var ids = Enumerable.Range(0, count).Select(i => (long)i).ToArray();
        return new FaceSet(side, FaceSet.Fer2013Classes, ids, labels, ids, new bool[count], new FaceUsage[count], pixels);
    }
}

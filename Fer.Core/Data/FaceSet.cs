using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Data;

/// <summary>Where a row came from in its source file (Kaggle's Usage column, or the course test file).</summary>
public enum FaceUsage : byte
{
    Training = 0,
    PublicTest = 1,
    PrivateTest = 2,
    /// <summary>A row of a course-format test.csv: no label.</summary>
    Test = 3,
}

/// <summary>
/// A set of square grayscale face images, stored column-wise so it maps directly onto Parquet and tensors.
/// Row i is (Ids[i], Labels[i], SourceIds[i], Flipped[i], Usage[i], pixels Side*Side bytes at i*Side*Side).
/// Labels[i] is -1 where the row has no label. SourceIds[i] is the id of the original image a row derives
/// from (itself for originals, the original for a mirror twin), so twins can be kept on one side of a split.
/// </summary>
public sealed class FaceSet
{
    public const int Unlabeled = -1;

    public static readonly IReadOnlyList<string> Fer2013Classes =
        ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"];

    public FaceSet(int side, IReadOnlyList<string> classNames, long[] ids, int[] labels, long[] sourceIds,
        bool[] flipped, FaceUsage[] usage, byte[] pixels)
    {
        int n = ids.Length;
        if (side <= 0) throw new ArgumentOutOfRangeException(nameof(side));
        if (labels.Length != n || sourceIds.Length != n || flipped.Length != n || usage.Length != n)
            throw new ArgumentException("all columns must have one entry per row");
        if (pixels.LongLength != (long)n * side * side)
            throw new ArgumentException($"pixels has {pixels.LongLength} bytes, expected {(long)n * side * side}");
        Side = side; ClassNames = classNames; Ids = ids; Labels = labels; SourceIds = sourceIds;
        Flipped = flipped; Usage = usage; Pixels = pixels;
    }

    public int Side { get; }
    public int PixelsPerImage => Side * Side;
    public IReadOnlyList<string> ClassNames { get; }
    public long[] Ids { get; }
    public int[] Labels { get; }
    public long[] SourceIds { get; }
    public bool[] Flipped { get; }
    public FaceUsage[] Usage { get; }
    public byte[] Pixels { get; }
    public int Count => Ids.Length;
    public bool HasLabels => Count > 0 && Array.TrueForAll(Labels, l => l != Unlabeled);

    public ReadOnlySpan<byte> Image(int row) => Pixels.AsSpan(row * PixelsPerImage, PixelsPerImage);

    public static FaceSet Empty(int side, IReadOnlyList<string> classNames) =>
        new(side, classNames, [], [], [], [], [], []);

    /// <summary>The rows at the given positions, in that order.</summary>
    public FaceSet Select(IReadOnlyList<int> rows)
    {
        int n = rows.Count, p = PixelsPerImage;
        var pixels = new byte[(long)n * p];
        var ids = new long[n]; var labels = new int[n]; var src = new long[n];
        var flipped = new bool[n]; var usage = new FaceUsage[n];
        for (int k = 0; k < n; k++)
        {
            int r = rows[k];
            ids[k] = Ids[r]; labels[k] = Labels[r]; src[k] = SourceIds[r]; flipped[k] = Flipped[r]; usage[k] = Usage[r];
            Buffer.BlockCopy(Pixels, r * p, pixels, k * p, p);
        }
        return new FaceSet(Side, ClassNames, ids, labels, src, flipped, usage, pixels);
    }

    public FaceSet Where(Func<int, bool> keepRow) =>
        Select(Enumerable.Range(0, Count).Where(keepRow).ToArray());

    public static FaceSet Concat(FaceSet a, FaceSet b)
    {
        if (a.Side != b.Side) throw new ArgumentException($"image sides differ: {a.Side} and {b.Side}");
        return new FaceSet(a.Side, a.ClassNames, [.. a.Ids, .. b.Ids], [.. a.Labels, .. b.Labels],
            [.. a.SourceIds, .. b.SourceIds], [.. a.Flipped, .. b.Flipped], [.. a.Usage, .. b.Usage],
            [.. a.Pixels, .. b.Pixels]);
    }

    /// <summary>Images as a float tensor [N, 1, Side, Side] scaled to 0..1, on the given device.</summary>
    public Tensor ImagesTensor(Device? device = null, int start = 0, int count = -1)
    {
        if (count < 0) count = Count - start;
        int p = PixelsPerImage;
        var floats = new float[(long)count * p];
        var src = Pixels.AsSpan(start * p, count * p);
        for (int i = 0; i < src.Length; i++) floats[i] = src[i] * (1f / 255f);
        var t = torch.tensor(floats, [count, 1, Side, Side]);
        return device is null || device.type == DeviceType.CPU ? t : t.to(device);
    }

    /// <summary>Labels as an int64 tensor [N]; throws if any row is unlabeled.</summary>
    public Tensor LabelsTensor(Device? device = null, int start = 0, int count = -1)
    {
        if (count < 0) count = Count - start;
        var l = new long[count];
        for (int i = 0; i < count; i++)
        {
            int v = Labels[start + i];
            if (v == Unlabeled) throw new InvalidOperationException($"row {start + i} (id {Ids[start + i]}) has no label");
            l[i] = v;
        }
        var t = torch.tensor(l);
        return device is null || device.type == DeviceType.CPU ? t : t.to(device);
    }

    public int[] ClassCounts()
    {
        var counts = new int[ClassNames.Count];
        foreach (var l in Labels) if (l >= 0 && l < counts.Length) counts[l]++;
        return counts;
    }
}

namespace Fer.Core.Data;

/// <summary>Offline augmentation: horizontal mirror twins that remember their source image.</summary>
public static class FaceAugment
{
    /// <summary>
    /// Appends a mirrored twin of every Training row: same id and label, SourceId = the original's id,
    /// Flipped = true. Validation and test rows (other usages) never get twins.
    /// </summary>
    public static FaceSet AddMirrorTwins(FaceSet faces)
    {
        var originals = Enumerable.Range(0, faces.Count).Where(i => faces.Usage[i] == FaceUsage.Training && !faces.Flipped[i]).ToArray();
        var twins = faces.Select(originals);
        for (int k = 0; k < twins.Count; k++)
        {
            FlipInPlace(twins.Pixels.AsSpan(k * twins.PixelsPerImage, twins.PixelsPerImage), twins.Side);
            twins.Flipped[k] = true;
            twins.SourceIds[k] = twins.Ids[k];
        }
        return FaceSet.Concat(faces, twins);
    }

    public static void FlipInPlace(Span<byte> image, int side)
    {
        if (image.Length != side * side) throw new ArgumentException($"image has {image.Length} pixels, expected {side * side}");
        for (int row = 0; row < side; row++) image.Slice(row * side, side).Reverse();
    }
}

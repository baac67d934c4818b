using OpenCvSharp;

namespace Fer.Core.Photos;

/// <summary>
/// Turns face boxes into model inputs the way the training data looks: the box widened by a margin on each side
/// (clamped to the image), made square around its centre, grayscale, resized with area interpolation to the
/// model's side. Pixels are bytes 0..255 as in a FaceSet; the model divides by 255 and applies the training
/// mean/std it stores (FerModel's input normalisation), exactly as in training and prediction.
/// </summary>
public static class FaceCrops
{
    /// <summary>The square region cropped for a box (in image pixels).</summary>
    public static FaceBox CropRegion(FaceBox box, int width, int height, double margin)
    {
        if (!(margin >= 0 && margin <= 1)) throw new ArgumentOutOfRangeException(nameof(margin), "margin must be in 0..1");
        double cx = box.X + box.W / 2.0, cy = box.Y + box.H / 2.0;
        double side = Math.Max(box.W, box.H) * (1 + 2 * margin);
        var square = new FaceBox((int)Math.Round(cx - side / 2), (int)Math.Round(cy - side / 2), (int)Math.Round(side), (int)Math.Round(side));
        var clamped = CascadeFaceFinder.Clamp(square, width, height);
        return clamped.W > 0 && clamped.H > 0 ? clamped : CascadeFaceFinder.Clamp(box, width, height);
    }

    /// <summary>
    /// Writes side*side bytes of the cropped, resized face into <paramref name="into"/>. With <paramref name="align"/>
    /// and landmarks on the box (YuNet's), the square is first turned about the box's centre so the eyes are level, as
    /// FER2013's faces are (registered by Google's face detector); pixels from outside the image repeat its edge.
    /// </summary>
    public static void Crop(Mat gray, FaceBox box, int side, double margin, Span<byte> into, bool align = true)
    {
        if (into.Length != side * side) throw new ArgumentException($"expected {side * side} bytes", nameof(into));
        using var square = align && box.Landmarks is { } landmarks ? Aligned(gray, box, margin, landmarks) : null;
        var region = CropRegion(box, gray.Width, gray.Height, margin);
        using var roi = square is null ? new Mat(gray, new Rect(region.X, region.Y, region.W, region.H)) : new Mat(square, new Rect(0, 0, square.Width, square.Height));
        using var resized = new Mat();
        var interpolation = roi.Width >= side ? InterpolationFlags.Area : InterpolationFlags.Linear;
        Cv2.Resize(roi, resized, new Size(side, side), interpolation: interpolation);
        unsafe
        {
            for (int row = 0; row < side; row++)
                new ReadOnlySpan<byte>((void*)resized.Ptr(row), side).CopyTo(into.Slice(row * side, side));
        }
    }

    /// <summary>The box's square (widened by the margin), turned by the eyes' angle about its centre, at full resolution.</summary>
    private static Mat Aligned(Mat gray, FaceBox box, double margin, FaceLandmarks landmarks)
    {
        double cx = box.X + box.W / 2.0, cy = box.Y + box.H / 2.0;
        int length = Math.Max(1, (int)Math.Round(Math.Max(box.W, box.H) * (1 + 2 * margin)));
        // getRotationMatrix2D turns counter-clockwise for a positive angle: a right-hand eye lower in the image (a
        // positive eye angle) comes up level. Then the box's centre moves to the square's centre.
        using var turn = Cv2.GetRotationMatrix2D(new Point2f((float)cx, (float)cy), landmarks.EyeAngleDegrees, 1.0);
        turn.Set(0, 2, turn.At<double>(0, 2) + length / 2.0 - cx);
        turn.Set(1, 2, turn.At<double>(1, 2) + length / 2.0 - cy);
        var square = new Mat();
        Cv2.WarpAffine(gray, square, turn, new Size(length, length), InterpolationFlags.Linear, BorderTypes.Replicate);
        return square;
    }
}

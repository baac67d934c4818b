using OpenCvSharp;
using SkiaSharp;

namespace Fer.Core.Photos;

/// <summary>
/// A decoded image: grayscale pixels for detection and cropping, and a colour copy for annotation (downscaled by
/// <see cref="ColorScale"/> when the image is huge). Coordinates are those of <see cref="Gray"/>, i.e. the original
/// image's pixels. Owns its matrices.
/// </summary>
public sealed class LoadedImage : IDisposable
{
    public LoadedImage(Mat gray, Mat color, double colorScale)
    {
        Gray = gray; Color = color; ColorScale = colorScale;
    }

    public Mat Gray { get; }
    /// <summary>BGR, <see cref="ColorScale"/> times the original size.</summary>
    public Mat Color { get; }
    public double ColorScale { get; }
    public int Width => Gray.Width;
    public int Height => Gray.Height;

    public void Dispose() { Gray.Dispose(); Color.Dispose(); }
}

/// <summary>
/// Reads PNG, JPEG, BMP and WebP files with SkiaSharp's codecs: the header is checked before any pixel is decoded
/// (not an image, zero bytes, absurd sizes are refused), a truncated file is an error rather than a half-grey image,
/// and a huge image (over 40 megapixels) is decoded straight to 8-bit gray
/// (one byte a pixel) with only a downscaled colour copy kept.
/// </summary>
public static class ImageLoader
{
    public static readonly IReadOnlySet<string> Extensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".webp" };

    /// <summary>Above this many pixels the colour image is not kept at full size.</summary>
    public const long FullColorPixels = 40_000_000;

    /// <summary>The colour copy of a huge image has at most this side.</summary>
    public const int AnnotationSide = 4096;

    /// <summary>Refused outright: more than 16384 x 16384 (256 MB of gray pixels, before any is decoded).</summary>
    public const long MaxPixels = 16384L * 16384;

    public static LoadedImage Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new PhotoInputException(path, "file not found");
        if (info.Length == 0) throw new PhotoInputException(path, "empty file (0 bytes)");
        using var codec = SKCodec.Create(path, out var result);
        if (codec is null)
            throw new PhotoInputException(path, $"not an image SkiaSharp can read ({result}); expected PNG, JPEG, BMP or WebP");
        int w = codec.Info.Width, h = codec.Info.Height;
        if (w <= 0 || h <= 0) throw new PhotoInputException(path, $"image header gives a size of {w}x{h}");
        long pixels = (long)w * h;
        if (pixels > MaxPixels) throw new PhotoInputException(path, $"image is {w}x{h} ({pixels / 1e6:0} megapixels), more than {MaxPixels / 1_000_000} allowed");
        // A header can claim any size: a file far too small to hold it (a 320-byte JPEG "of" 32000x32000) is refused
        // before memory for its pixels is taken. Baseline JPEG spends at least 4 bits on every 8x8 block, PNG's deflate
        // packs at most about 1,032 bytes into one.
        long leastBytes = codec.EncodedFormat switch
        {
            SKEncodedImageFormat.Jpeg => pixels / 128,
            SKEncodedImageFormat.Png => pixels / 1032,
            _ => 0,
        };
        if (info.Length < leastBytes)
            throw new PhotoInputException(path, $"the header claims {w}x{h} pixels, but the file holds {info.Length:N0} bytes, fewer than such a {codec.EncodedFormat} image needs ({leastBytes:N0}): damaged or crafted");

        if (pixels <= FullColorPixels)
        {
            var bgra = new Mat(h, w, MatType.CV_8UC4);
            try
            {
                Decode(codec, path, new SKImageInfo(w, h, SKColorType.Bgra8888, SKAlphaType.Unpremul), bgra);
                var color = new Mat();
                Cv2.CvtColor(bgra, color, ColorConversionCodes.BGRA2BGR);
                var gray = new Mat();
                Cv2.CvtColor(color, gray, ColorConversionCodes.BGR2GRAY);
                return new LoadedImage(gray, color, 1.0);
            }
            finally { bgra.Dispose(); }
        }

        // Huge: decoded by OpenCV straight to one byte a pixel (Skia decodes gray only from gray sources), and a
        // colour copy made from the gray at annotation size.
        var big = Cv2.ImRead(path, ImreadModes.Grayscale);
        if (big.Empty())
        {
            big.Dispose();
            throw new PhotoInputException(path, $"could not decode the {w}x{h} {codec.EncodedFormat} image (truncated or damaged)");
        }
        try
        {
            double scale = Math.Min(1.0, (double)AnnotationSide / Math.Max(w, h));
            using var small = new Mat();
            Cv2.Resize(big, small, new Size(Math.Max(1, (int)Math.Round(w * scale)), Math.Max(1, (int)Math.Round(h * scale))), interpolation: InterpolationFlags.Area);
            var color = new Mat();
            Cv2.CvtColor(small, color, ColorConversionCodes.GRAY2BGR);
            return new LoadedImage(big, color, scale);
        }
        catch { big.Dispose(); throw; }
    }

    private static void Decode(SKCodec codec, string path, SKImageInfo info, Mat into)
    {
        var r = codec.GetPixels(info, into.Data, checked((int)into.Step()), new SKCodecOptions(0));
        switch (r)
        {
            case SKCodecResult.Success: return;
            case SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput:
                throw new PhotoInputException(path, $"truncated or damaged image data ({r}) in a {codec.EncodedFormat} of {codec.Info.Width}x{codec.Info.Height}");
            default:
                throw new PhotoInputException(path, $"could not decode the {codec.EncodedFormat} image ({r})");
        }
    }
}

using OpenCvSharp;

namespace Fer.Core.Photos;

/// <summary>A face box in the original image's pixels; a detector that finds landmarks (YuNet) adds them and its score.</summary>
public readonly record struct FaceBox(int X, int Y, int W, int H)
{
    public FaceLandmarks? Landmarks { get; init; }
    /// <summary>The detector's confidence in 0..1; null where it gives none (Haar, whole images).</summary>
    public float? Score { get; init; }
}

/// <summary>Where to find faces: a Haar cascade, or the whole image as one face (FER2013-style crops).</summary>
public interface IFaceFinder : IDisposable
{
    IReadOnlyList<FaceBox> Find(Mat gray);
}

/// <summary>
/// OpenCV's Haar-cascade face detector. Large images are downscaled (area interpolation) so their longer side is
/// at most <see cref="DetectionSide"/> before detection, and the boxes scaled back, so a 12000x12000 photo costs
/// no more than a 1280-pixel one. Not thread-safe (one per thread).
/// </summary>
public sealed class CascadeFaceFinder : IFaceFinder
{
    public const string DefaultCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";
    public const string InstallHint = "install Debian's cascades with `apt-get install opencv-data`, or give one with --cascade FILE";

    private readonly CascadeClassifier _cascade;

    public CascadeFaceFinder(string cascadePath, int detectionSide = 1280, double scaleFactor = 1.1, int minNeighbors = 6, double minFaceFraction = 0.05)
    {
        if (!File.Exists(cascadePath))
            throw new PhotoInputException(cascadePath, $"cascade file not found; {InstallHint}");
        CheckCascadeXml(cascadePath);
        if (detectionSide < 64) throw new ArgumentOutOfRangeException(nameof(detectionSide), "detection side must be at least 64");
        _cascade = new CascadeClassifier();
        bool loaded;
        try { loaded = _cascade.Load(cascadePath); }
        catch (OpenCVException e) { _cascade.Dispose(); throw new PhotoInputException(cascadePath, $"not a Haar cascade OpenCV can load ({e.ErrMsg})", e); }
        if (!loaded || _cascade.Empty())
        {
            _cascade.Dispose();
            throw new PhotoInputException(cascadePath, $"not a Haar cascade OpenCV can load; {InstallHint}");
        }
        CascadePath = cascadePath;
        DetectionSide = detectionSide;
        ScaleFactor = scaleFactor;
        MinNeighbors = minNeighbors;
        MinFaceFraction = minFaceFraction;
    }

    /// <summary>A cascade is an XML file of about a megabyte nested 6-8 deep; larger or deeper files are not read.</summary>
    public const long MaxCascadeBytes = 64L << 20;
    public const int MaxCascadeDepth = 64;

    /// <summary>
    /// Reads the file as XML before OpenCV does: OpenCV's parser recurses once per nesting level and a deeply nested
    /// file (a few megabytes of open tags) overflowed the native stack and killed the process. A regular file, at most
    /// <see cref="MaxCascadeBytes"/>, well-formed, no DTD, nested at most <see cref="MaxCascadeDepth"/> deep; else one
    /// line naming the file, the line and the problem.
    /// </summary>
    internal static void CheckCascadeXml(string path)
    {
        var stat = Storage.FileStat.Of(path);
        if (stat.Kind != Storage.FileKind.Regular) throw new PhotoInputException(path, Storage.FileStat.Describe(stat.Kind));
        if (stat.Size > MaxCascadeBytes) throw new PhotoInputException(path, $"{stat.Size:N0} bytes is far more than a Haar cascade (limit {MaxCascadeBytes:N0})");
        var settings = new System.Xml.XmlReaderSettings
        {
            DtdProcessing = System.Xml.DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = MaxCascadeBytes,
            IgnoreComments = true, IgnoreWhitespace = true,
        };
        try
        {
            using var reader = System.Xml.XmlReader.Create(path, settings);
            while (reader.Read())
                if (reader.Depth > MaxCascadeDepth)
                    throw new PhotoInputException(path, $"line {((System.Xml.IXmlLineInfo)reader).LineNumber}: XML nested more than {MaxCascadeDepth} deep; not a Haar cascade");
        }
        catch (System.Xml.XmlException e)
        {
            throw new PhotoInputException(path, $"line {e.LineNumber}: not a Haar cascade: {e.Message.Split(" Line ")[0].TrimEnd(',', ' ')}", e);
        }
    }

    public string CascadePath { get; }
    public int DetectionSide { get; }
    public double ScaleFactor { get; }
    public int MinNeighbors { get; }
    /// <summary>Smallest face searched for, as a fraction of the detection image's shorter side (at least 24 pixels).</summary>
    public double MinFaceFraction { get; }

    public IReadOnlyList<FaceBox> Find(Mat gray)
    {
        if (gray.Type() != MatType.CV_8UC1) throw new ArgumentException("expected an 8-bit grayscale image", nameof(gray));
        double scale = Math.Min(1.0, (double)DetectionSide / Math.Max(gray.Width, gray.Height));
        using var small = new Mat();
        Mat input = gray;
        if (scale < 1.0)
        {
            Cv2.Resize(gray, small, new Size(Math.Max(1, (int)Math.Round(gray.Width * scale)), Math.Max(1, (int)Math.Round(gray.Height * scale))),
                interpolation: InterpolationFlags.Area);
            input = small;
        }
        // No histogram equalisation: a global one crushes a face's contrast in a photo that is mostly flat background.
        int minSide = Math.Max(24, (int)(Math.Min(input.Width, input.Height) * MinFaceFraction));
        if (minSide > Math.Min(input.Width, input.Height)) return [];
        var found = _cascade.DetectMultiScale(input, ScaleFactor, MinNeighbors, HaarDetectionTypes.ScaleImage, new Size(minSide, minSide));
        var boxes = found
            .Select(r => Clamp(new FaceBox((int)Math.Round(r.X / scale), (int)Math.Round(r.Y / scale), (int)Math.Round(r.Width / scale), (int)Math.Round(r.Height / scale)), gray.Width, gray.Height))
            .Where(b => b.W > 0 && b.H > 0).ToList();
        return ReadingOrder(boxes);
    }

    /// <summary>Reading order (rows of the median box height, top to bottom, then left to right), so output is stable.</summary>
    internal static IReadOnlyList<FaceBox> ReadingOrder(List<FaceBox> boxes)
    {
        if (boxes.Count == 0) return boxes;
        int row = Math.Max(1, boxes.Select(b => b.H).Order().ElementAt(boxes.Count / 2));
        return boxes.OrderBy(b => (b.Y + b.H / 2) / row).ThenBy(b => b.X).ThenBy(b => b.Y).ToList();
    }

    internal static FaceBox Clamp(FaceBox b, int width, int height)
    {
        int x0 = Math.Clamp(b.X, 0, width), y0 = Math.Clamp(b.Y, 0, height);
        int x1 = Math.Clamp(b.X + b.W, 0, width), y1 = Math.Clamp(b.Y + b.H, 0, height);
        return new FaceBox(x0, y0, x1 - x0, y1 - y0);
    }

    public void Dispose() => _cascade.Dispose();
}

/// <summary>--no-detect: each image is one face (as FER2013's crops are).</summary>
public sealed class WholeImageFinder : IFaceFinder
{
    public IReadOnlyList<FaceBox> Find(Mat gray) => [new FaceBox(0, 0, gray.Width, gray.Height)];
    public void Dispose() { }
}

using System.Security.Cryptography;
using Fer.Core.Storage;
using OpenCvSharp;

namespace Fer.Core.Photos;

/// <summary>A point in the original image's pixels.</summary>
public readonly record struct LandmarkPoint(float X, float Y);

/// <summary>
/// YuNet's five landmarks, named as its model card names them: the subject's right eye (on the image's left in a
/// frontal face), left eye, nose tip, right and left mouth corners.
/// </summary>
public sealed record FaceLandmarks(LandmarkPoint RightEye, LandmarkPoint LeftEye, LandmarkPoint Nose, LandmarkPoint MouthRight, LandmarkPoint MouthLeft)
{
    /// <summary>The angle of the line from the right eye to the left eye, in degrees (0: level; positive: the left eye lower in the image).</summary>
    public double EyeAngleDegrees => Math.Atan2(LeftEye.Y - RightEye.Y, LeftEye.X - RightEye.X) * 180 / Math.PI;
}

/// <summary>
/// OpenCV's YuNet face detector (<c>FaceDetectorYN</c>, the ONNX model of the OpenCV Zoo, MIT licence): boxes with five
/// landmarks and a score. Images are downscaled so their longer side is at most <see cref="DetectionSide"/> (YuNet
/// finds faces from about 10 pixels) and padded to a multiple of 32; boxes and landmarks come back in the original
/// image's pixels, in reading order. OpenCV fixes a detector's input size when it is made, so one is kept per padded
/// size (a few at most). Not thread-safe (one per thread).
/// </summary>
public sealed class YuNetFaceFinder : IFaceFinder
{
    /// <summary>The OpenCV Zoo's face_detection_yunet_2023mar.onnx (232,589 bytes): its SHA-256, from the zoo's Git LFS record.</summary>
    public const string OfficialSha256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4";
    public const string ModelFileName = "face_detection_yunet_2023mar.onnx";
    public const string DownloadHint = "download " + ModelFileName + " from https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet "
        + "(MIT licence) and give it with --yunet-model FILE or FER_YUNET_MODEL, or put it in ~/.cache/fer/models/";
    /// <summary>A YuNet model is a few hundred kilobytes; anything far larger is not one (and is not read).</summary>
    public const long MaxModelBytes = 64L << 20;

    private readonly Dictionary<(int W, int H), FaceDetectorYN> _detectors = [];

    public YuNetFaceFinder(string modelPath, int detectionSide = 640, float scoreThreshold = 0.7f, float nmsThreshold = 0.3f)
    {
        if (detectionSide < 64) throw new ArgumentOutOfRangeException(nameof(detectionSide), "detection side must be at least 64");
        if (!(scoreThreshold > 0 && scoreThreshold <= 1)) throw new ArgumentOutOfRangeException(nameof(scoreThreshold), "score threshold must be in (0, 1]");
        var stat = FileStat.Of(modelPath);
        if (stat.Kind == FileKind.Missing) throw new PhotoInputException(modelPath, $"YuNet model not found; {DownloadHint}");
        if (stat.Kind != FileKind.Regular) throw new PhotoInputException(modelPath, FileStat.Describe(stat.Kind)); // only regular files are read
        if (stat.Size > MaxModelBytes) throw new PhotoInputException(modelPath, $"{stat.Size:N0} bytes is far more than a YuNet model (limit {MaxModelBytes:N0})");
        ModelPath = Path.GetFullPath(modelPath);
        DetectionSide = detectionSide;
        ScoreThreshold = scoreThreshold;
        NmsThreshold = nmsThreshold;
        using (var stream = new FileStream(ModelPath, FileMode.Open, FileAccess.Read, FileShare.Read))
            ModelSha256 = Convert.ToHexStringLower(SHA256.HashData(stream));
        Detector(64, 64); // loads the model now, so a file that is not one is this one line and not a failure mid-run
    }

    public string ModelPath { get; }
    public string ModelSha256 { get; }
    /// <summary>Whether the model is the OpenCV Zoo's 2023mar YuNet, byte for byte.</summary>
    public bool IsOfficialModel => ModelSha256 == OfficialSha256;
    public int DetectionSide { get; }
    public float ScoreThreshold { get; }
    public float NmsThreshold { get; }

    /// <summary>The model file to use when none is named: $FER_YUNET_MODEL, else ~/.cache/fer/models/ (XDG_CACHE_HOME respected); null if neither is a file.</summary>
    public static string? DefaultModel()
    {
        if (Environment.GetEnvironmentVariable("FER_YUNET_MODEL") is { Length: > 0 } named) return named;
        var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        var path = Path.Combine(cache, "fer", "models", ModelFileName);
        return File.Exists(path) ? path : null;
    }

    private FaceDetectorYN Detector(int width, int height)
    {
        if (_detectors.TryGetValue((width, height), out var detector)) return detector;
        if (_detectors.Count >= 8)
        {
            foreach (var d in _detectors.Values) d.Dispose();
            _detectors.Clear();
        }
        try { detector = FaceDetectorYN.Create(ModelPath, "", new Size(width, height), ScoreThreshold, NmsThreshold); }
        catch (OpenCVException e) { throw new PhotoInputException(ModelPath, $"not a YuNet ONNX model OpenCV can load ({e.ErrMsg}); {DownloadHint}", e); }
        return _detectors[(width, height)] = detector;
    }

    public IReadOnlyList<FaceBox> Find(Mat gray)
    {
        if (gray.Type() != MatType.CV_8UC1) throw new ArgumentException("expected an 8-bit grayscale image", nameof(gray));
        double scale = Math.Min(1.0, (double)DetectionSide / Math.Max(gray.Width, gray.Height));
        int w = Math.Max(1, (int)Math.Round(gray.Width * scale)), h = Math.Max(1, (int)Math.Round(gray.Height * scale));
        int paddedW = (w + 31) / 32 * 32, paddedH = (h + 31) / 32 * 32;
        // YuNet reads colour (BGR); Fer's photos are detected in grayscale, so the gray channel goes to all three.
        using var canvas = new Mat(new Size(paddedW, paddedH), MatType.CV_8UC3, Scalar.All(0));
        using (var small = new Mat())
        using (var bgr = new Mat())
        {
            if (scale < 1.0) Cv2.Resize(gray, small, new Size(w, h), interpolation: InterpolationFlags.Area);
            Cv2.CvtColor(scale < 1.0 ? small : gray, bgr, ColorConversionCodes.GRAY2BGR);
            using var target = new Mat(canvas, new Rect(0, 0, w, h));
            bgr.CopyTo(target);
        }
        using var faces = new Mat();
        Detector(paddedW, paddedH).Detect(canvas, faces);
        var boxes = new List<FaceBox>();
        int found = faces.Rows;
        for (int i = 0; i < found; i++)
        {
            float V(int k) => faces.At<float>(i, k);
            LandmarkPoint P(int k) => new((float)(V(k) / scale), (float)(V(k + 1) / scale));
            var box = CascadeFaceFinder.Clamp(new FaceBox((int)Math.Round(V(0) / scale), (int)Math.Round(V(1) / scale),
                (int)Math.Round(V(2) / scale), (int)Math.Round(V(3) / scale)), gray.Width, gray.Height);
            if (box.W <= 0 || box.H <= 0) continue;
            boxes.Add(box with { Landmarks = new FaceLandmarks(P(4), P(6), P(8), P(10), P(12)), Score = V(14) });
        }
        return CascadeFaceFinder.ReadingOrder(boxes);
    }

    public void Dispose()
    {
        foreach (var d in _detectors.Values) d.Dispose();
        _detectors.Clear();
    }
}

using System.Diagnostics;
using Fer.Core.Explain;
using OpenCvSharp;

namespace Fer.Core.Photos;

public sealed record PhotoPredictOptions
{
    /// <summary>Margin added on each side of a detected box before the square crop, as a fraction of the box.</summary>
    public double Margin { get; init; } = 0.1;
    /// <summary>Faces per forward pass.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Classify every Nth frame of a video.</summary>
    public int Every { get; init; } = 1;
    /// <summary>Grad-CAM over each face crop.</summary>
    public bool Explain { get; init; }
    /// <summary>Grad-CAM layer (default: the explained member's last convolution).</summary>
    public string? ExplainLayer { get; init; }
    public bool Annotate { get; init; } = true;
    /// <summary>Turn each face so its eyes are level before classifying it, where the detector gives landmarks (YuNet).</summary>
    public bool Align { get; init; } = true;
}

/// <summary>
/// `fer predict`'s engine: decodes each image (or samples a video's frames), finds faces, crops them as the training
/// data looks, classifies the faces of many images together (one forward pass per member per batch), draws the
/// results and writes annotated copies, an annotated video and a per-second timeline. A bad input is reported
/// through <c>onError</c> and the batch goes on. Output files are written under a temporary name and renamed.
/// </summary>
public sealed class PhotoPredictor
{
    private readonly EnsembleClassifier _classifier;
    private readonly IFaceFinder _finder;
    private readonly PhotoPredictOptions _options;
    private readonly string _outDir;
    private readonly Action<PhotoInputException> _onError;
    private readonly HashSet<string> _usedNames = new(StringComparer.Ordinal);
    private readonly List<Pending> _pending = [];
    private byte[] _crops = [];
    private int _cropCount;
    private long _pendingPixels;
    private readonly WeightedMember? _explained;
    private readonly string? _explainLayer;
    private PhotoPredictionResult _result = new();

    public PhotoPredictor(EnsembleClassifier classifier, IFaceFinder finder, PhotoPredictOptions options, string outDir, Action<PhotoInputException> onError)
    {
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), "batch size must be at least 1");
        if (options.Every < 1) throw new ArgumentOutOfRangeException(nameof(options), "--every must be at least 1");
        _classifier = classifier; _finder = finder; _options = options; _outDir = outDir; _onError = onError;
        if (options.Explain)
        {
            // The heaviest-weighted member with a CAM layer; Grad-CAM there (its last convolution) unless a layer is named.
            _explained = classifier.Members.Where(m => m.Model.CamLayer is not null)
                .OrderByDescending(m => m.Weight).FirstOrDefault()
                ?? throw new ArgumentException($"--explain needs a convolutional member for Grad-CAM; the run's members: {string.Join(", ", classifier.Members.Select(m => m.Name))}");
            _explainLayer = options.ExplainLayer ?? _explained.Model.CamLayer!;
            _explained.Model.LayerIndex(_explainLayer); // an unknown name fails here, listing the valid ones
        }
    }

    /// <summary>The member and layer --explain draws Grad-CAM for (null without --explain).</summary>
    public (string Member, string Layer)? Explained => _explained is null ? null : (_explained.Name, _explainLayer!);

    public PhotoPredictionResult Run(IReadOnlyList<PhotoInput> inputs, CancellationToken ct = default)
    {
        _result = new PhotoPredictionResult();
        var total = Stopwatch.StartNew();
        foreach (var input in inputs)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                if (input.Kind == PhotoInputKind.Video) RunVideo(input.Path, ct);
                else RunImage(input.Path);
            }
            catch (PhotoInputException e) { Report(e); }
            catch (OpenCVException e) { Report(new PhotoInputException(input.Path, $"OpenCV could not process it: {e.ErrMsg}", e)); }
        }
        Flush();
        _result.Timings.Total = total.Elapsed.TotalSeconds;
        return _result;
    }

    private void Report(PhotoInputException e)
    {
        _result.Errors.Add(e);
        _onError(e);
    }

    private void RunImage(string path)
    {
        var clock = Stopwatch.StartNew();
        var image = ImageLoader.Load(path);
        _result.Timings.Decode += clock.Elapsed.TotalSeconds;
        try
        {
            var boxes = Detect(image.Gray);
            var annotatedPath = _options.Annotate ? ReserveName("annotated", Path.GetFileNameWithoutExtension(path), AnnotatedExtension(path)) : null;
            int width = image.Width, height = image.Height;
            Enqueue(new Pending(path, null, null, image.Color, image.ColorScale, boxes, _cropCount, (color, faces, explanations) =>
            {
                if (annotatedPath is not null) WriteImageAtomically(annotatedPath, color);
                _result.Images.Add(new ImageResult(path, width, height, faces.Count, annotatedPath, explanations));
            }), image.Gray);
            image.Gray.Dispose(); // the colour copy lives on in the pending entry
        }
        catch { image.Dispose(); throw; }
    }

    private void RunVideo(string path, CancellationToken ct)
    {
        Flush(); // earlier images complete first, so a damaged video drops only its own frames
        var info = new FileInfo(path);
        if (!info.Exists) throw new PhotoInputException(path, "file not found");
        if (info.Length == 0) throw new PhotoInputException(path, "empty file (0 bytes)");
        using var capture = new VideoCapture(path);
        if (!capture.IsOpened()) throw new PhotoInputException(path, "not a video OpenCV can read");
        double fps = capture.Fps;
        bool guessed = !(fps > 0 && double.IsFinite(fps) && fps < 1000);
        if (guessed) fps = 25;
        int every = _options.Every;
        VideoWriter? writer = null;
        string? annotated = null, temp = null;
        var timeline = new List<(double Seconds, float[] Probabilities)>();
        int read = 0, sampled = 0, faces = 0, withFaces = 0, width = 0, height = 0;
        try
        {
            using var frame = new Mat();
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var clock = Stopwatch.StartNew();
                bool sample = read % every == 0;
                bool ok = sample ? capture.Read(frame) && !frame.Empty() : capture.Grab();
                _result.Timings.Decode += clock.Elapsed.TotalSeconds;
                if (!ok) break;
                int index = read++;
                if (!sample) continue;
                sampled++;
                width = frame.Width; height = frame.Height;
                var color = frame.Channels() == 3 ? frame.Clone() : ToBgr(frame);
                using var gray = new Mat();
                Cv2.CvtColor(color, gray, ColorConversionCodes.BGR2GRAY);
                if (_options.Annotate && writer is null)
                {
                    annotated = ReserveName("annotated", Path.GetFileNameWithoutExtension(path) + ".annotated", ".avi");
                    temp = Path.Combine(Path.GetDirectoryName(annotated)!, $".{Path.GetFileNameWithoutExtension(annotated)}.{Guid.NewGuid():N}.tmp.avi");
                    writer = new VideoWriter(temp, FourCC.MJPG, fps / every, new Size(color.Width, color.Height));
                    if (!writer.IsOpened()) throw new PhotoInputException(path, $"OpenCV cannot write the annotated video {annotated}");
                }
                double seconds = index / fps;
                var boxes = Detect(gray);
                var w = writer;
                Enqueue(new Pending(path, index, seconds, color, 1.0, boxes, _cropCount, (c, found, _) =>
                {
                    faces += found.Count;
                    if (found.Count > 0) withFaces++;
                    foreach (var f in found) timeline.Add((seconds, f.Probabilities));
                    w?.Write(c);
                }), gray);
            }
            if (read == 0) throw new PhotoInputException(path, "OpenCV opened it but read no frame (not a video, or damaged)");
            Flush(); // the writer's frames, in order, before it closes
        }
        catch
        {
            DropPending();
            writer?.Dispose();
            if (temp is not null && File.Exists(temp)) File.Delete(temp);
            throw;
        }
        writer?.Dispose();
        if (temp is not null) File.Move(temp, annotated!, overwrite: true);

        string? figure = null, csv = null;
        if (timeline.Count > 0)
        {
            var clock = Stopwatch.StartNew();
            var perSecond = EmotionTimeline.PerSecond(timeline, _classifier.NumClasses);
            var stem = Path.GetFileNameWithoutExtension(path);
            figure = ReserveName("timelines", stem + ".timeline", ".png");
            csv = Path.ChangeExtension(figure, ".csv");
            EmotionTimeline.SavePng(figure, perSecond, _classifier.ClassNames, $"{Path.GetFileName(path)}: mean probability per second ({faces} faces in {withFaces} of {sampled} frames)");
            EmotionTimeline.SaveCsv(csv, perSecond, _classifier.ClassNames);
            _result.Timings.Annotate += clock.Elapsed.TotalSeconds;
        }
        _result.Videos.Add(new VideoResult(path, read, sampled, fps, guessed, width, height, faces, withFaces, annotated, figure, csv));
    }

    private static Mat ToBgr(Mat frame)
    {
        var bgr = new Mat();
        Cv2.CvtColor(frame, bgr, frame.Channels() == 4 ? ColorConversionCodes.BGRA2BGR : ColorConversionCodes.GRAY2BGR);
        return bgr;
    }

    private List<FaceBox> Detect(Mat gray)
    {
        var clock = Stopwatch.StartNew();
        var boxes = _finder.Find(gray).ToList();
        _result.Timings.Detect += clock.Elapsed.TotalSeconds;
        return boxes;
    }

    private void Enqueue(Pending pending, Mat gray)
    {
        var clock = Stopwatch.StartNew();
        int side = _classifier.Side, p = side * side;
        EnsureCapacity((_cropCount + pending.Boxes.Count) * p);
        foreach (var box in pending.Boxes)
            FaceCrops.Crop(gray, box, side, _options.Margin, _crops.AsSpan(_cropCount++ * p, p), _options.Align);
        _result.Timings.Crop += clock.Elapsed.TotalSeconds;
        _pending.Add(pending);
        _pendingPixels += (long)pending.Color.Width * pending.Color.Height;
        // Many faces together make a batch; colour copies waiting for their labels are bounded in count and pixels.
        if (_cropCount >= _options.BatchSize || _pending.Count >= 256 || _pendingPixels > 150_000_000) Flush();
    }

    private void EnsureCapacity(int bytes)
    {
        if (_crops.Length >= bytes) return;
        Array.Resize(ref _crops, Math.Max(bytes, _crops.Length * 2));
    }

    /// <summary>Classifies every waiting crop (in batches), then annotates and completes the waiting images in order.</summary>
    private void Flush()
    {
        if (_pending.Count == 0) return;
        int side = _classifier.Side, p = side * side, c = _classifier.NumClasses;
        var probabilities = new float[_cropCount * c];
        float[]? cams = _explained is null ? null : new float[_cropCount * p];
        for (int start = 0; start < _cropCount; start += _options.BatchSize)
        {
            int n = Math.Min(_options.BatchSize, _cropCount - start);
            var clock = Stopwatch.StartNew();
            var probs = _classifier.Classify(_crops.AsSpan(start * p, n * p), n);
            probs.CopyTo(probabilities, start * c);
            _result.ForwardPasses++;
            _result.LargestBatch = Math.Max(_result.LargestBatch, n);
            _result.Timings.Classify += clock.Elapsed.TotalSeconds;
            if (cams is not null)
            {
                clock.Restart();
                var labels = Fer.Core.Ensemble.EnsembleWeights.ArgMax(probs, c);
                using var images = _classifier.ToTensor(_crops.AsSpan(start * p, n * p), n);
                var cam = Saliency.GradCam(_explained!.Model, images, _explainLayer!, labels);
                cam.Maps.AsSpan(0, n * p).CopyTo(cams.AsSpan(start * p));
                _result.Timings.Explain += clock.Elapsed.TotalSeconds;
            }
        }

        var annotate = Stopwatch.StartNew();
        foreach (var pending in _pending)
        {
            var faces = new List<ClassifiedFace>(pending.Boxes.Count);
            var explanations = new List<string>();
            for (int k = 0; k < pending.Boxes.Count; k++)
            {
                int row = pending.CropStart + k;
                var probs = probabilities.AsSpan(row * c, c).ToArray();
                int label = 0;
                for (int q = 1; q < c; q++) if (probs[q] > probs[label]) label = q;
                faces.Add(new ClassifiedFace(pending.Boxes[k], label, probs[label], probs));
                _result.Faces.Add(new FaceRow(pending.File, pending.Frame, pending.Seconds, pending.Boxes[k], label, _classifier.ClassNames[label], probs[label], probs));
                if (cams is not null && pending.Frame is null)
                {
                    var name = ReserveName("explain", $"{Path.GetFileNameWithoutExtension(pending.File)}_face{k + 1}_{_classifier.ClassNames[label]}", ".png");
                    using var panel = FaceAnnotator.ExplanationPanel(_crops.AsSpan(row * p, p), side, cams.AsSpan(row * p, p));
                    WriteImageAtomically(name, panel);
                    explanations.Add(name);
                }
            }
            if (_options.Annotate) FaceAnnotator.Draw(pending.Color, pending.Scale, faces, _classifier.ClassNames);
            pending.Complete(pending.Color, faces, explanations);
            pending.Color.Dispose();
        }
        _result.Timings.Annotate += annotate.Elapsed.TotalSeconds;
        _pending.Clear();
        _cropCount = 0;
        _pendingPixels = 0;
    }

    private void DropPending()
    {
        foreach (var pending in _pending) pending.Color.Dispose();
        _pending.Clear();
        _cropCount = 0;
        _pendingPixels = 0;
    }

    private static string AnnotatedExtension(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".jpg" or ".jpeg" => ".jpg",
        ".bmp" => ".bmp",
        _ => ".png",
    };

    /// <summary>A file name under a subfolder of the output, unique within this run (photo.png, photo-2.png, ...).</summary>
    private string ReserveName(string folder, string stem, string extension)
    {
        var dir = Path.Combine(_outDir, folder);
        Directory.CreateDirectory(dir);
        var safe = string.Concat(stem.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' or '.' ? ch : '_'));
        if (safe.Length == 0) safe = "image";
        var name = safe + extension;
        for (int i = 2; !_usedNames.Add(Path.Combine(folder, name)); i++) name = $"{safe}-{i}{extension}";
        return Path.Combine(dir, name);
    }

    private static void WriteImageAtomically(string path, Mat image)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileNameWithoutExtension(path)}.{Guid.NewGuid():N}.tmp{Path.GetExtension(path)}");
        try
        {
            if (!Cv2.ImWrite(temp, image)) throw new IOException($"OpenCV could not write {path}");
            File.Move(temp, path, overwrite: true);
        }
        finally { if (File.Exists(temp)) File.Delete(temp); }
    }

    private sealed record Pending(string File, int? Frame, double? Seconds, Mat Color, double Scale, List<FaceBox> Boxes, int CropStart,
        Action<Mat, List<ClassifiedFace>, IReadOnlyList<string>> Complete);
}

using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Fer.Core.Ensemble;
using Fer.Core.Photos;
using Fer.Core.Storage;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;
using Serilog;

namespace Fer.Flow.Cli;

public sealed record PredictRequest(IReadOnlyList<string> Paths, string Artifacts = "artifacts", string? Run = null, string? Out = null,
    int Every = 1, string? Cascade = null, bool NoDetect = false, bool Explain = false, string? ExplainLayer = null, double Margin = 0.1,
    int BatchSize = 64, int DetectSide = 1280, string Device = "auto", bool Annotate = true, int MinNeighbors = 6, double MinFace = 0.05,
    FaceDetectorChoice Detector = FaceDetectorChoice.Auto, string? YuNetModel = null, bool Align = true);

/// <summary>`fer predict --detector`: YuNet (landmarks, eyes levelled) where its model is found, else Haar; or either by name.</summary>
public enum FaceDetectorChoice { Auto, YuNet, Haar }

/// <summary>`fer predict PATH...`: faces in photos, folders and videos classified by a finished run's ensemble.</summary>
public static class PredictCommand
{
    public static Command Create(Option<string> artifactsOption, Option<string> deviceOption)
    {
        var paths = new Argument<string[]>("paths") { Description = "Images (PNG, JPEG, BMP, WebP), folders of them (recursively) or videos", Arity = ArgumentArity.OneOrMore };
        var run = new Option<string?>("--run") { Description = "Run id (or unique prefix); default: the latest finished run" };
        var output = new Option<string?>("--out") { Description = "Output folder (default: ARTIFACTS/predict/<time>)" };
        var every = new Option<int>("--every") { Description = "Classify every Nth frame of a video", DefaultValueFactory = _ => 1 };
        var cascade = new Option<string?>("--cascade") { Description = $"Haar cascade file (default: {CascadeFaceFinder.DefaultCascade})" };
        var noDetect = new Option<bool>("--no-detect") { Description = "Treat each image as one face (FER2013-style crops)" };
        var explain = new Option<bool>("--explain") { Description = "Grad-CAM over each face crop (explain/ folder)" };
        var explainLayer = new Option<string?>("--explain-layer") { Description = "Layer for Grad-CAM (default: the last convolution)" };
        var margin = new Option<double>("--margin") { Description = "Margin around each detected face, as a fraction of its box", DefaultValueFactory = _ => 0.1 };
        var batch = new Option<int>("--batch-size") { Description = "Faces per forward pass", DefaultValueFactory = _ => 64 };
        var detectSide = new Option<int>("--detect-side") { Description = "Images are downscaled to this longer side for detection", DefaultValueFactory = _ => 1280 };
        var minNeighbors = new Option<int>("--min-neighbors") { Description = "Haar detections that must overlap to make a face (higher: fewer false faces)", DefaultValueFactory = _ => 6 };
        var minFace = new Option<double>("--min-face") { Description = "Smallest face searched for, as a fraction of the detection image's shorter side", DefaultValueFactory = _ => 0.05 };
        var noAnnotate = new Option<bool>("--no-annotate") { Description = "Write only faces.csv and faces.json" };
        var detector = new Option<FaceDetectorChoice>("--detector")
        {
            Description = "auto (YuNet where its model is found, else Haar), yunet or haar", DefaultValueFactory = _ => FaceDetectorChoice.Auto,
        };
        var yunetModel = new Option<string?>("--yunet-model") { Description = $"YuNet's ONNX model (default: $FER_YUNET_MODEL, else ~/.cache/fer/models/{YuNetFaceFinder.ModelFileName})" };
        var noAlign = new Option<bool>("--no-align") { Description = "Do not turn faces so their eyes are level (YuNet's landmarks)" };
        var command = new Command("predict", "Find and classify faces in images, folders and videos with a trained run's ensemble");
        command.Arguments.Add(paths);
        foreach (var o in new Option[] { artifactsOption, run, output, every, cascade, noDetect, explain, explainLayer, margin, batch, detectSide, minNeighbors, minFace, noAnnotate, detector, yunetModel, noAlign, deviceOption })
            command.Options.Add(o);
        command.SetAction((parse, ct) => Task.FromResult(Run(new PredictRequest(parse.GetValue(paths) ?? [], parse.GetValue(artifactsOption)!, parse.GetValue(run),
            parse.GetValue(output), parse.GetValue(every), parse.GetValue(cascade), parse.GetValue(noDetect), parse.GetValue(explain), parse.GetValue(explainLayer),
            parse.GetValue(margin), parse.GetValue(batch), parse.GetValue(detectSide), parse.GetValue(deviceOption)!, !parse.GetValue(noAnnotate), parse.GetValue(minNeighbors), parse.GetValue(minFace),
            parse.GetValue(detector), parse.GetValue(yunetModel), !parse.GetValue(noAlign)),
            Console.Out, Console.Error, ct)));
        return command;
    }

    /// <summary>
    /// The face finder the request asks for, and a note when auto chose Haar for want of YuNet's model (said in the log
    /// and the summary, so nobody wonders why faces are not aligned).
    /// </summary>
    private static (IFaceFinder Finder, string? Note) ChooseFinder(PredictRequest r)
    {
        if (r.NoDetect) return (new WholeImageFinder(), null);
        IFaceFinder Haar() => new CascadeFaceFinder(r.Cascade ?? CascadeFaceFinder.DefaultCascade, r.DetectSide, minNeighbors: r.MinNeighbors, minFaceFraction: r.MinFace);
        IFaceFinder YuNet(string model) => new YuNetFaceFinder(model, r.DetectSide);
        switch (r.Detector)
        {
            case FaceDetectorChoice.Haar: return (Haar(), null);
            case FaceDetectorChoice.YuNet:
                return (YuNet(r.YuNetModel ?? YuNetFaceFinder.DefaultModel()
                    ?? throw new PhotoInputException("--detector yunet", $"no YuNet model given or found; {YuNetFaceFinder.DownloadHint}")), null);
            default:
                if (r.YuNetModel is not null) return (YuNet(r.YuNetModel), null);
                if (r.Cascade is null && YuNetFaceFinder.DefaultModel() is { } found) return (YuNet(found), null);
                return (Haar(), r.Cascade is null ? $"Haar cascade (no YuNet model found: {YuNetFaceFinder.DownloadHint})" : null);
        }
    }

    /// <summary>What found the faces, for the log and faces.json.</summary>
    private static string DescribeFinder(IFaceFinder finder) => finder switch
    {
        CascadeFaceFinder c => $"haar {c.CascadePath}",
        YuNetFaceFinder y => $"yunet {y.ModelPath} ({(y.IsOfficialModel ? "the OpenCV Zoo's 2023mar model" : $"SHA-256 {y.ModelSha256[..16]}..., not the OpenCV Zoo's 2023mar model")})",
        _ => "none (--no-detect)",
    };

    public static int Run(PredictRequest r, TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
    {
        string? problem = r switch
        {
            { Paths.Count: 0 } => "give at least one image, folder or video",
            { Every: < 1 } => $"--every {r.Every}: give 1 or more",
            { BatchSize: < 1 or > 65_536 } => $"--batch-size {r.BatchSize}: give 1 to 65536",
            { Margin: < 0 or > 1 } or { Margin: double.NaN } => $"--margin {r.Margin.ToString(CultureInfo.InvariantCulture)}: give 0 to 1",
            { DetectSide: < 64 } => $"--detect-side {r.DetectSide}: give 64 or more",
            { MinNeighbors: < 1 or > 100 } => $"--min-neighbors {r.MinNeighbors}: give 1 to 100",
            { MinFace: <= 0 or > 1 } or { MinFace: double.NaN } => $"--min-face {r.MinFace.ToString(CultureInfo.InvariantCulture)}: give a fraction above 0 and at most 1",
            { NoDetect: true, Cascade: not null } => "--no-detect and --cascade cannot be combined",
            { NoDetect: true, Detector: not FaceDetectorChoice.Auto } => "--no-detect and --detector cannot be combined",
            { NoDetect: true, YuNetModel: not null } => "--no-detect and --yunet-model cannot be combined",
            { Detector: FaceDetectorChoice.YuNet, Cascade: not null } => "--cascade is a Haar cascade: it cannot go with --detector yunet",
            { Detector: FaceDetectorChoice.Haar, YuNetModel: not null } => "--yunet-model cannot go with --detector haar",
            { Cascade: not null, YuNetModel: not null } => "give --cascade (Haar) or --yunet-model (YuNet), not both",
            _ => null,
        };
        if (problem is not null) { stderr.WriteLine($"error: {problem}"); return ExitCodes.BadInput; }
        // Photos are decoded, detected and cropped with OpenCV: a missing system library is one line, not a stack trace.
        if (OpenCvNative.Problem is { } missing) { stderr.WriteLine($"error: {missing}"); return ExitCodes.BadInput; }

        var clock = Stopwatch.StartNew();
        IFaceFinder finder;
        string? detectorNote;
        try { (finder, detectorNote) = ChooseFinder(r); }
        catch (PhotoInputException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        using var _finder = finder;

        RunEnsemble ensemble;
        try { ensemble = RunEnsemble.Load(r.Artifacts, r.Run, DeviceChoice.Resolve(r.Device)); }
        catch (FlowDefinitionException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        var loadSeconds = clock.Elapsed.TotalSeconds;

        var predictId = $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";
        var outDir = Path.GetFullPath(r.Out ?? Path.Combine(r.Artifacts, "predict", predictId));
        // One writer per output folder: a second fer predict into it stops here (exit 3) instead of mixing files.
        OutputLock outLock;
        try { outLock = OutputLock.Take(outDir, "fer predict"); }
        catch (Exception e) when (e is ArtifactsBusyException or ArtifactsUnusableException)
        {
            stderr.WriteLine($"error: {e.Message}");
            foreach (var m in ensemble.Members) m.Model.Dispose();
            return e is ArtifactsBusyException ? ExitCodes.Busy : ExitCodes.BadInput;
        }
        using var _outLock = outLock;
        try { Directory.CreateDirectory(outDir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot create the output folder {outDir}: {e.Message}");
            foreach (var m in ensemble.Members) m.Model.Dispose();
            return ExitCodes.BadInput;
        }
        using var log = RunLog.Create(outDir, predictId, "predict", console: false);
        var device = DeviceChoice.Resolve(r.Device);
        using var classifier = new EnsembleClassifier(ensemble.Members.Select(m => new WeightedMember(m.Trained.Member, m.Model, m.Weight)).ToList(),
            ensemble.ClassNames, ensemble.Tta, device);
        log.Information("Predicting with run {SourceRun}: members {Members}, test-time augmentation {Tta}, side {Side}, detector {Detector}",
            ensemble.Run.RunId, ensemble.Members.Select(m => $"{m.Trained.Member}={m.Weight:0.###}").ToArray(), ensemble.Tta, ensemble.Side,
            DescribeFinder(finder));
        if (detectorNote is not null) log.Information("Detector: {DetectorNote}", detectorNote);

        void OnError(PhotoInputException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            log.Error(e.InnerException ?? e, "Input {File} failed: {Problem}", e.Path, e.Problem);
        }

        var inputErrors = new List<PhotoInputException>();
        var inputs = PhotoInputs.Expand(r.Paths, e => { inputErrors.Add(e); OnError(e); });
        PhotoPredictor predictor;
        try
        {
            predictor = new PhotoPredictor(classifier, finder, new PhotoPredictOptions
            {
                Margin = r.Margin, BatchSize = r.BatchSize, Every = r.Every, Explain = r.Explain, ExplainLayer = r.ExplainLayer, Annotate = r.Annotate,
                Align = r.Align,
            }, outDir, OnError);
        }
        catch (ArgumentException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }

        // An output that cannot be written (a full disk, no rights) is exit 2, as for the other commands: each file is
        // written under a temporary name and renamed, so what is there is whole.
        int CannotWrite(Exception e)
        {
            stderr.WriteLine($"error: cannot write the outputs in {outDir}: {e.Message}");
            log.Error(e, "Writing outputs in {OutDir} failed", outDir);
            return ExitCodes.BadInput;
        }

        PhotoPredictionResult result;
        try { result = predictor.Run(inputs, ct); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return CannotWrite(e);
        }
        result.Errors.InsertRange(0, inputErrors);
        var runInfo = new
        {
            Id = ensemble.Run.RunId, Members = ensemble.Members.ToDictionary(m => m.Trained.Member, m => m.Weight), FlipTta = ensemble.Tta != TestTimeAugmentation.None, Tta = SettingsSchema.SnakeCase(ensemble.Tta.ToString()), ensemble.Side,
            Detector = DescribeFinder(finder), Aligned = r.Align && finder is YuNetFaceFinder, Explained = predictor.Explained?.ToString(),
        };
        try
        {
            PhotoCsv.WriteAtomically(Path.Combine(outDir, PhotoCsv.CsvName), PhotoCsv.FormatCsv(result.Faces, ensemble.ClassNames));
            PhotoCsv.WriteAtomically(Path.Combine(outDir, PhotoCsv.JsonName), PhotoCsv.FormatJson(result, ensemble.ClassNames, runInfo));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return CannotWrite(e); }

        Summarise(result, ensemble, outDir, loadSeconds, clock.Elapsed.TotalSeconds, detectorNote ?? DescribeFinder(finder), stdout);
        var t = result.Timings;
        log.Information("Predicted {Faces} faces in {Images} images and {Videos} videos in {Seconds:0.00} s: decode {Decode:0.00} s, detect {Detect:0.00} s, crop {Crop:0.00} s, classify {Classify:0.00} s in {ForwardPasses} batches, explain {Explain:0.00} s, annotate {Annotate:0.00} s; {Failed} inputs failed",
            result.Faces.Count, result.Images.Count, result.Videos.Count, t.Total, t.Decode, t.Detect, t.Crop, t.Classify, result.ForwardPasses, t.Explain, t.Annotate, result.Errors.Count);
        return result.Errors.Count > 0 ? ExitCodes.BadInput : ExitCodes.Ok;
    }

    private static void Summarise(PhotoPredictionResult result, RunEnsemble ensemble, string outDir, double loadSeconds, double seconds, string detector, TextWriter stdout)
    {
        var inv = CultureInfo.InvariantCulture;
        var t = result.Timings;
        stdout.WriteLine($"run       {ensemble.Run.RunId}: {string.Join(", ", ensemble.Members.Select(m => $"{m.Trained.Member} {m.Weight.ToString("0.###", inv)}"))}{ExportCommand.TtaNote(ensemble.Tta)}");
        stdout.WriteLine($"detector  {SafeText.Terminal(detector)}");
        int noFace = result.Images.Count(i => i.Faces == 0);
        stdout.WriteLine($"images    {result.Images.Count}{(noFace > 0 ? $" ({noFace} without a face: {string.Join(", ", result.Images.Where(i => i.Faces == 0).Take(5).Select(i => Path.GetFileName(i.File)))}{(noFace > 5 ? ", ..." : "")})" : "")}");
        if (result.Videos.Count > 0)
            stdout.WriteLine($"videos    {result.Videos.Count} ({result.Videos.Sum(v => v.FramesRead)} frames read, {result.Videos.Sum(v => v.SampledFrames)} classified)");
        stdout.WriteLine($"faces     {result.Faces.Count}");
        var perClass = ensemble.ClassNames.Select((n, k) => (n, Count: result.Faces.Count(f => f.Label == k))).Where(x => x.Count > 0).ToList();
        if (perClass.Count > 0) stdout.WriteLine($"per class {string.Join(", ", perClass.Select(x => $"{x.n} {x.Count}"))}");
        double faceRate = t.Total > 0 ? result.Faces.Count / t.Total : 0;
        string Share(double part) => t.Total > 0 ? (100 * part / t.Total).ToString("0", inv) + "%" : "-";
        stdout.WriteLine($"seconds   {seconds.ToString("0.00", inv)} ({loadSeconds.ToString("0.00", inv)} loading the run); {t.Total.ToString("0.00", inv)} predicting: " +
            $"{faceRate.ToString("0.0", inv)} faces/s; decode {Share(t.Decode)}, detect {Share(t.Detect)}, crop {Share(t.Crop)}, classify {Share(t.Classify)} " +
            $"({result.ForwardPasses} batches, largest {result.LargestBatch}){(t.Explain > 0 ? $", explain {Share(t.Explain)}" : "")}, annotate {Share(t.Annotate)}");
        if (result.Errors.Count > 0) stdout.WriteLine($"failed    {result.Errors.Count} inputs (listed above and in faces.json)");
        stdout.WriteLine($"wrote     {outDir}");
    }
}

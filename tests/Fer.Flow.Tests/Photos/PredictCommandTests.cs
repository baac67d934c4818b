using System.Text.Json;
using Fer.Core.Photos;
using Fer.Flow.Cli;
using Fer.Tests.Shared;
using OpenCvSharp;

namespace Fer.Flow.Tests.Photos;

/// <summary>`fer predict` on real photos (skimage's astronaut), a mosaic, a video, FER-style crops and bad inputs, against a small trained run.</summary>
public sealed partial class PhotoCommandTests(TrainedRunFixture run) : IClassFixture<TrainedRunFixture>
{
    private static readonly string[] Classes = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"];

    private (int Code, string Out, string Err) Predict(params string[] args) => PredictWith(run.Artifacts, args);

    private static (int Code, string Out, string Err) PredictWith(string artifacts, string[] args)
    {
        var paths = new List<string>();
        string? outDir = null, cascade = PhotoTestData.Cascade;
        string? yunetModel = null;
        var detector = FaceDetectorChoice.Auto;
        int every = 1;
        bool noDetect = false, explain = false, align = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out": outDir = args[++i]; break;
                case "--cascade": cascade = args[++i]; break;
                case "--every": every = int.Parse(args[++i]); break;
                case "--no-detect": noDetect = true; cascade = null; break;
                case "--explain": explain = true; break;
                case "--detector": detector = Enum.Parse<FaceDetectorChoice>(args[++i], ignoreCase: true); if (detector == FaceDetectorChoice.YuNet) cascade = null; break;
                case "--yunet-model": yunetModel = args[++i]; cascade = null; break;
                case "--no-align": align = false; break;
                default: paths.Add(args[i]); break;
            }
        }
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = PredictCommand.Run(new PredictRequest(paths, artifacts, Out: outDir, Every: every, Cascade: cascade, NoDetect: noDetect, Explain: explain, Device: "cpu",
            Detector: detector, YuNetModel: yunetModel, Align: align),
            stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static List<Dictionary<string, string>> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines[0].Split(',');
        return lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second)).ToList();
    }

    private static string CopyAstronaut(string dir, string name = "astronaut.png")
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.Copy(PhotoTestData.Astronaut, path, overwrite: true);
        return path;
    }

    [SkippableFact]
    public void YuNet_finds_faces_with_landmarks_aligns_them_and_says_which_model_it_used()
    {
        OpenCvForTests.SkipUnlessLoads();
        using var dir = new TempDir();
        // tests/data/yunet/fake-yunet.onnx: YuNet's interface, and a white 32x32 square on its 32-pixel grid is a face.
        var model = Path.Combine(Repo.Root, "tests", "data", "yunet", "fake-yunet.onnx");
        Directory.CreateDirectory(dir["in"]);
        var picture = Path.Combine(dir["in"], "squares.png");
        using (var gray = new Mat(new Size(256, 160), MatType.CV_8UC1, Scalar.All(0)))
        {
            gray.Rectangle(new Rect(32, 64, 32, 32), Scalar.All(255), -1);
            gray.Rectangle(new Rect(160, 64, 32, 32), Scalar.All(255), -1);
            Cv2.ImWrite(picture, gray);
        }
        var (code, stdout, stderr) = Predict(picture, "--out", dir["out"], "--detector", "yunet", "--yunet-model", model);
        Assert.True(code == 0, stderr + stdout);
        Assert.Matches(@"detector  yunet .*fake-yunet\.onnx \(SHA-256 [0-9a-f]{16}\.\.\., not the OpenCV Zoo's 2023mar model\)", stdout);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["out"], "faces.json")));
        Assert.True(json.RootElement.GetProperty("run").GetProperty("aligned").GetBoolean());
        var faces = json.RootElement.GetProperty("faces").EnumerateArray().ToList();
        Assert.Equal([(32, 64), (160, 64)], faces.Select(f => (f.GetProperty("x").GetInt32(), f.GetProperty("y").GetInt32())));
        Assert.All(faces, f =>
        {
            Assert.Equal(20.56, f.GetProperty("landmarks").GetProperty("eye_angle").GetDouble(), 2);
            Assert.InRange(f.GetProperty("detector_score").GetDouble(), 0.99, 1.0);
        });

        // Asked for by name without a model: one line saying where to get it, exit 2.
        var saved = Environment.GetEnvironmentVariable("FER_YUNET_MODEL");
        Environment.SetEnvironmentVariable("FER_YUNET_MODEL", Path.Combine(dir.Path, "absent.onnx"));
        try
        {
            (code, stdout, stderr) = Predict(picture, "--out", dir["out2"], "--detector", "yunet");
            Assert.Equal(2, code);
            Assert.Matches(@"^error: .*absent\.onnx: YuNet model not found; download face_detection_yunet_2023mar\.onnx from https://github\.com/opencv/opencv_zoo", stderr);
            Assert.Single(stderr.TrimEnd().Split('\n'));
        }
        finally { Environment.SetEnvironmentVariable("FER_YUNET_MODEL", saved); }
    }

    [SkippableFact]
    public void Finds_and_classifies_the_astronauts_face_and_writes_csv_json_and_an_annotated_copy()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        var photo = CopyAstronaut(dir["in"]);
        var (code, stdout, stderr) = Predict(photo, "--out", dir["out"]);
        Assert.True(code == 0, stderr + stdout);

        var csvPath = Path.Combine(dir["out"], "faces.csv");
        Assert.Equal("file,frame,x,y,w,h,label,confidence," + string.Join(",", Classes), File.ReadLines(csvPath).First());
        var face = Assert.Single(ReadCsv(csvPath));
        Assert.Equal(photo, face["file"]);
        Assert.Equal("", face["frame"]);
        int x = int.Parse(face["x"]), y = int.Parse(face["y"]), w = int.Parse(face["w"]), h = int.Parse(face["h"]);
        // Eileen Collins' face in the 512x512 portrait lies around x 170..280, y 60..170.
        Assert.InRange(x + w / 2, 195, 255);
        Assert.InRange(y + h / 2, 85, 145);
        Assert.InRange(w, 60, 160);
        var probs = Classes.Select(c => double.Parse(face[c], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.InRange(probs.Sum(), 0.9999, 1.0001);
        Assert.Equal(Classes[Array.IndexOf(probs, probs.Max())], face["label"]);
        Assert.Equal(probs.Max(), double.Parse(face["confidence"], System.Globalization.CultureInfo.InvariantCulture), 6);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["out"], "faces.json")));
        var jf = Assert.Single(json.RootElement.GetProperty("faces").EnumerateArray().ToList());
        Assert.Equal(x, jf.GetProperty("x").GetInt32());
        Assert.Equal(face["label"], jf.GetProperty("label").GetString());
        Assert.Equal(Classes, json.RootElement.GetProperty("classes").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(Path.GetFileName(run.RunDir), json.RootElement.GetProperty("run").GetProperty("id").GetString());

        var annotated = Path.Combine(dir["out"], "annotated", "astronaut.png");
        using var original = Cv2.ImRead(photo);
        using var drawn = Cv2.ImRead(annotated);
        Assert.Equal(original.Size(), drawn.Size());
        // The box is drawn on the face's border; far from it the picture is untouched.
        Assert.NotEqual(original.At<Vec3b>(y + h / 2, x + 1), drawn.At<Vec3b>(y + h / 2, x + 1));
        Assert.Equal(original.At<Vec3b>(450, 40), drawn.At<Vec3b>(450, 40));
        Assert.Contains("faces     1", stdout);
        Assert.Contains("faces/s", stdout);
    }

    [SkippableFact]
    public void A_mosaic_of_four_astronauts_gives_four_faces_one_in_each_quadrant()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        using var one = Cv2.ImRead(PhotoTestData.Astronaut);
        using var row = new Mat();
        Cv2.HConcat([one, one], row);
        using var mosaic = new Mat();
        Cv2.VConcat([row, row], mosaic);
        Directory.CreateDirectory(dir["in"]);
        var path = Path.Combine(dir["in"], "mosaic.jpg");
        Assert.True(Cv2.ImWrite(path, mosaic));

        var (code, stdout, stderr) = Predict(path, "--out", dir["out"]);
        Assert.True(code == 0, stderr + stdout);
        var faces = ReadCsv(Path.Combine(dir["out"], "faces.csv"));
        Assert.Equal(4, faces.Count);
        var quadrants = faces.Select(f => ((int.Parse(f["x"]) + int.Parse(f["w"]) / 2) / 512, (int.Parse(f["y"]) + int.Parse(f["h"]) / 2) / 512)).ToList();
        Assert.Equal([(0, 0), (1, 0), (0, 1), (1, 1)], quadrants); // reading order
        Assert.True(File.Exists(Path.Combine(dir["out"], "annotated", "mosaic.jpg")));
        Assert.Contains("faces     4", stdout);
    }

    [SkippableFact]
    public async Task FER_style_crops_with_no_detect_get_exactly_the_ensembles_probabilities_from_the_run()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        // The run's own test faces, as 48x48 PNGs: the same pixels the predict stage classified.
        var record = Fer.Flow.Pipeline.RunRecord.TryRead(run.RunDir)!;
        var split = record.Stages.Single(s => s.Kind == "split");
        var cache = new Fer.Flow.Cache.StageCache(Path.Combine(run.Artifacts, "cache"));
        var splitOut = (Fer.Flow.Stages.SplitFaces)Fer.Flow.Pipeline.OutputStore.Read(typeof(Fer.Flow.Stages.SplitFaces), cache.Lookup(split.Stage, split.Fingerprint).Dir);
        var test = await splitOut.Test.ReadAsync();
        int n = Math.Min(10, test.Count);
        Directory.CreateDirectory(dir["crops"]);
        for (int i = 0; i < n; i++)
        {
            using var m = Mat.FromPixelData(test.Side, test.Side, MatType.CV_8UC1, test.Image(i).ToArray());
            Assert.True(Cv2.ImWrite(Path.Combine(dir["crops"], $"t{i:000}.png"), m));
        }
        var (code, stdout, stderr) = Predict(dir["crops"], "--no-detect", "--out", dir["out"]);
        Assert.True(code == 0, stderr + stdout);
        var rows = ReadCsv(Path.Combine(dir["out"], "faces.csv"));
        Assert.Equal(n, rows.Count);

        var (_, splits) = await Fer.Core.Storage.PredictionTable.ReadAsync(Path.Combine(run.RunDir, "probabilities.parquet"));
        var expected = splits.Single(s => s.Split == "test");
        Assert.Equal(test.Ids.Take(n), expected.Ids.Take(n));
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(Path.Combine(dir["crops"], $"t{i:000}.png"), rows[i]["file"]);
            Assert.Equal(("0", "0", "48", "48"), (rows[i]["x"], rows[i]["y"], rows[i]["w"], rows[i]["h"]));
            for (int k = 0; k < Classes.Length; k++)
                Assert.InRange(Math.Abs(expected.Probabilities[i * Classes.Length + k] - double.Parse(rows[i][Classes[k]], System.Globalization.CultureInfo.InvariantCulture)), 0, 2e-6); // the CSV has 6 decimals
        }
    }

    [SkippableFact]
    public void A_video_written_by_OpenCV_gives_an_annotated_video_and_a_per_second_timeline()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["in"]);
        var video = Path.Combine(dir["in"], "clip.avi");
        using (var frame = Cv2.ImRead(PhotoTestData.Astronaut))
        using (var writer = new VideoWriter(video, FourCC.MJPG, 10, frame.Size()))
        {
            Assert.True(writer.IsOpened());
            using var flipped = new Mat();
            Cv2.Flip(frame, flipped, FlipMode.Y);
            for (int i = 0; i < 30; i++) writer.Write(i < 20 ? frame : flipped); // two seconds as is, one mirrored
        }
        var (code, stdout, stderr) = Predict(video, "--every", "2", "--out", dir["out"]);
        Assert.True(code == 0, stderr + stdout);

        var rows = ReadCsv(Path.Combine(dir["out"], "faces.csv"));
        Assert.Equal(Enumerable.Range(0, 15).Select(i => (2 * i).ToString()), rows.Select(r => r["frame"]));
        Assert.All(rows, r => Assert.Equal(video, r["file"]));
        // The mirrored second's face sits on the other side of the picture.
        Assert.True(int.Parse(rows[0]["x"]) + int.Parse(rows[0]["w"]) / 2 < 256);
        Assert.True(int.Parse(rows[^1]["x"]) + int.Parse(rows[^1]["w"]) / 2 > 256);

        var timelineCsv = File.ReadAllLines(Path.Combine(dir["out"], "timelines", "clip.timeline.csv"));
        Assert.Equal("second,faces," + string.Join(",", Classes), timelineCsv[0]);
        Assert.Equal(["0", "1", "2"], timelineCsv.Skip(1).Select(l => l.Split(',')[0]));
        Assert.All(timelineCsv.Skip(1), l => Assert.Equal("5", l.Split(',')[1]));
        using (var figure = Cv2.ImRead(Path.Combine(dir["out"], "timelines", "clip.timeline.png")))
            Assert.False(figure.Empty());

        using var annotated = new VideoCapture(Path.Combine(dir["out"], "annotated", "clip.annotated.avi"));
        Assert.True(annotated.IsOpened());
        Assert.Equal(5.0, annotated.Fps, 3);
        int frames = 0;
        using var m = new Mat();
        while (annotated.Read(m) && !m.Empty()) { frames++; Assert.Equal(512, m.Width); }
        Assert.Equal(15, frames);
        Assert.Contains("30 frames read, 15 classified", stdout);
    }

    [SkippableFact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Bad_inputs_are_one_line_each_and_the_rest_of_the_batch_goes_on_with_exit_2()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        var folder = dir["mixed"];
        CopyAstronaut(folder, "good.png");
        File.WriteAllText(Path.Combine(folder, "notimage.png"), "this is text, not a PNG\n");
        File.WriteAllBytes(Path.Combine(folder, "empty.png"), []);
        var bytes = File.ReadAllBytes(PhotoTestData.Astronaut);
        File.WriteAllBytes(Path.Combine(folder, "truncated.png"), bytes[..(bytes.Length / 2)]);
        using (var blank = new Mat(300, 300, MatType.CV_8UC3, new Scalar(128, 128, 128)))
            Cv2.ImWrite(Path.Combine(folder, "blank.png"), blank);
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "ignored: not an image or video by its name");
        var locked = Path.Combine(folder, "locked");
        Directory.CreateDirectory(locked);
        CopyAstronaut(locked, "hidden.png");
        File.SetUnixFileMode(locked, UnixFileMode.None);
        bool lockHolds;
        try { Directory.GetFiles(locked); lockHolds = false; } catch (UnauthorizedAccessException) { lockHolds = true; } // root reads anyway
        var missing = dir["does-not-exist.jpg"];
        try
        {
            var (code, stdout, stderr) = Predict(folder, missing, "--out", dir["out"]);
            Assert.Equal(2, code);
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(lines, l => l.Contains(Path.Combine(folder, "notimage.png")) && l.Contains("not an image"));
            Assert.Single(lines, l => l.Contains(Path.Combine(folder, "empty.png")) && l.Contains("0 bytes"));
            Assert.Single(lines, l => l.Contains(Path.Combine(folder, "truncated.png")) && l.Contains("truncated"));
            Assert.Single(lines, l => l.Contains(missing) && l.Contains("no such file"));
            if (lockHolds) Assert.Single(lines, l => l.Contains(locked) && l.Contains("cannot read the folder"));
            Assert.Equal(lockHolds ? 5 : 4, lines.Length);
            Assert.DoesNotContain("   at ", stderr); // no stack traces on the console

            var rows = ReadCsv(Path.Combine(dir["out"], "faces.csv"));
            Assert.Equal(lockHolds ? 1 : 2, rows.Count);
            Assert.Equal(Path.Combine(folder, "good.png"), rows[0]["file"]);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["out"], "faces.json")));
            var images = json.RootElement.GetProperty("images").EnumerateArray().ToDictionary(e => Path.GetFileName(e.GetProperty("file").GetString()!), e => e.GetProperty("faces").GetInt32());
            Assert.Equal(0, images["blank.png"]);
            Assert.Equal(1, images["good.png"]);
            Assert.Equal(lines.Length, json.RootElement.GetProperty("errors").GetArrayLength());
            Assert.Contains("without a face: blank.png", stdout);
            Assert.Contains("failed    " + lines.Length, stdout);
        }
        finally { File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); }
    }

    [SkippableFact]
    public void A_12000_pixel_photo_is_downscaled_for_detection_and_boxes_come_back_in_its_own_pixels()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["in"]);
        var path = Path.Combine(dir["in"], "huge.png");
        using (var canvas = new Mat(12000, 12000, MatType.CV_8UC3, new Scalar(90, 110, 120)))
        using (var one = Cv2.ImRead(PhotoTestData.Astronaut))
        using (var big = new Mat())
        {
            Cv2.Resize(one, big, new Size(4096, 4096), interpolation: InterpolationFlags.Linear);
            using (var roi = new Mat(canvas, new Rect(4000, 4000, 4096, 4096))) big.CopyTo(roi);
            Assert.True(Cv2.ImWrite(path, canvas, new ImageEncodingParam(ImwriteFlags.PngCompression, 1)));
        }
        var before = System.Diagnostics.Process.GetCurrentProcess().WorkingSet64;
        var (code, stdout, stderr) = Predict(path, "--out", dir["out"]);
        Assert.True(code == 0, stderr + stdout);
        var faces = ReadCsv(Path.Combine(dir["out"], "faces.csv"));
        // The 512-pixel portrait's face (centre about 225, 115) scaled by 8 and moved by 4000; every box lies in the pasted portrait.
        Assert.Single(faces, f => int.Parse(f["x"]) + int.Parse(f["w"]) / 2 is >= 4000 + 8 * 195 and <= 4000 + 8 * 255
                                  && int.Parse(f["y"]) + int.Parse(f["h"]) / 2 is >= 4000 + 8 * 85 and <= 4000 + 8 * 145);
        Assert.All(faces, f => Assert.True(int.Parse(f["x"]) >= 4000 && int.Parse(f["y"]) >= 4000 && int.Parse(f["x"]) + int.Parse(f["w"]) <= 8096));
        using var annotated = Cv2.ImRead(Path.Combine(dir["out"], "annotated", "huge.png"));
        Assert.Equal(ImageLoader.AnnotationSide, annotated.Width); // a 4096-pixel annotated copy, not 12000
        Console.WriteLine($"12000x12000 PNG: working set {before / 1e6:0} MB before, peak {System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:0} MB; {stdout}");
    }

    [SkippableFact]
    public void Explain_writes_a_GradCAM_panel_for_each_face()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        var photo = CopyAstronaut(dir["in"]);
        var (code, stdout, stderr) = Predict(photo, "--explain", "--out", dir["out"]);
        Assert.True(code == 0, stderr + stdout);
        var panel = Assert.Single(Directory.GetFiles(Path.Combine(dir["out"], "explain")));
        Assert.StartsWith("astronaut_face1_", Path.GetFileName(panel));
        using var m = Cv2.ImRead(panel);
        Assert.Equal(new Size(384, 192), m.Size());
        // The right half is the crop blended with a jet heat map: coloured, unlike the gray crop on the left.
        using var left = new Mat(m, new Rect(0, 0, 192, 192));
        using var right = new Mat(m, new Rect(192, 0, 192, 192));
        Assert.Equal(0, Cv2.Norm(left.ExtractChannel(0), left.ExtractChannel(2), NormTypes.L1));
        Assert.True(Cv2.Norm(right.ExtractChannel(0), right.ExtractChannel(2), NormTypes.L1) > 1000);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["out"], "faces.json")));
        Assert.Contains("conv2d_6", json.RootElement.GetProperty("run").GetProperty("explained").GetString());
    }

    [SkippableFact]
    public void A_missing_cascade_is_exit_2_with_the_apt_get_hint()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        var (code, _, stderr) = Predict(PhotoTestData.Astronaut, "--cascade", dir["no-such-cascade.xml"], "--out", dir["out"]);
        Assert.Equal(2, code);
        Assert.Contains("no-such-cascade.xml", stderr);
        Assert.Contains("apt-get install opencv-data", stderr);
        Assert.False(Directory.Exists(dir["out"]));
    }

    [SkippableFact]
    public void An_artifacts_folder_without_a_finished_run_is_exit_2_naming_the_command_that_trains_one()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["artifacts/runs"]);
        var (code, _, stderr) = PredictWith(dir["artifacts"], [PhotoTestData.Astronaut, "--out", dir["out"]]);
        Assert.Equal(2, code);
        Assert.Contains("no finished run", stderr);
        Assert.Contains("fer run flows/quickstart.fsx", stderr);
        var err = new StringWriter();
        Assert.Equal(2, ExportCommand.Run(dir["artifacts"], null, dir["export"], new StringWriter(), err));
        Assert.Contains("fer run flows/quickstart.fsx", err.ToString());
    }

    /// <summary>
    /// The real program on a machine whose GTK 3 is unusable: in a private mount namespace an empty file is bound over
    /// libgtk-3.so.0, so OpenCV's runtime fails to load as on a fresh server. fer predict says which library and which
    /// package in one line, exit 2, and writes nothing.
    /// </summary>
    [SkippableFact]
    public void Without_GTK_3_predict_is_one_line_naming_the_library_and_the_Debian_package()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && Environment.UserName == "root", "needs root on Linux to hide a library in a mount namespace");
        var gtk = new[] { "/lib/x86_64-linux-gnu/libgtk-3.so.0", "/usr/lib/x86_64-linux-gnu/libgtk-3.so.0" }.FirstOrDefault(File.Exists);
        Skip.If(gtk is null, "libgtk-3.so.0 is not installed here, so there is nothing to hide (the guard's skip reason already says what is missing)");
        using var dir = new TempDir();
        File.WriteAllBytes(dir["empty.so"], []);
        var fer = Path.Combine(AppContext.BaseDirectory, "fer.dll");
        var script = $"mount --bind '{dir["empty.so"]}' '{gtk}' || exit 97; exec dotnet '{fer}' predict --artifacts '{dir["artifacts"]}' --out '{dir["out"]}' '{dir["face.png"]}'";
        var start = new System.Diagnostics.ProcessStartInfo("unshare", ["-m", "sh", "-c", script]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        System.Diagnostics.Process process;
        try { process = System.Diagnostics.Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception e) { throw new SkipException($"unshare cannot start: {e.Message}"); }
        using var _ = process;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Skip.If(process.ExitCode == 97, "cannot bind-mount in a private mount namespace here: " + stderr.Trim());
        Assert.Equal(2, process.ExitCode);
        Assert.Equal("", stdout.Result);
        Assert.Equal("error: OpenCV's native library (OpenCvSharpExtern) cannot load libgtk-3.so.0, which is missing (on Debian or Ubuntu: apt-get install libgtk-3-0)",
            Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.False(Directory.Exists(dir["out"]));
    }
}

using System.Diagnostics;
using Fer.Core.Photos;
using Fer.Flow.Cli;
using OpenCvSharp;

namespace Fer.Bench;

/// <summary>
/// `fer predict` on a folder of 200 photos made from skimage's astronaut (sizes 400..1000 pixels, small rotations,
/// mirrored, PNG and JPEG, every fourth a 2x2 mosaic of four faces), with a small trained run: faces per second and
/// where the time goes (decode, detection, crop, classification, annotation).
/// </summary>
public sealed class PhotosBenchmark : IBenchmark
{
    public string Name => "photos";
    public string Description => "fer predict on 200 photos (astronaut variants): faces/s and detection's share of the time";

    public void Run(bool quick)
    {
        var astronaut = new[] { Environment.GetEnvironmentVariable("FER_ASTRONAUT"), Path.Combine(Path.GetTempPath(), "fer-testdata", "astronaut.png"),
            "/usr/lib/python3/dist-packages/skimage/data/astronaut.png" }.FirstOrDefault(p => p is not null && File.Exists(p));
        if (astronaut is null)
        {
            Console.WriteLine("  skipped: no astronaut.png (run the photo tests once, or set FER_ASTRONAUT; it comes from Debian's python3-skimage)");
            return;
        }
        if (!File.Exists(CascadeFaceFinder.DefaultCascade)) { Console.WriteLine($"  skipped: {CascadeFaceFinder.InstallHint}"); return; }
        var root = Path.Combine(Path.GetTempPath(), "fer-bench-photos-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var artifacts = Path.Combine(root, "artifacts");
            var script = Path.Combine(root, "photos.fsx");
            Directory.CreateDirectory(root);
            File.WriteAllText(script, $$"""
                #load @"{{Path.Combine(QuickstartBenchmark.FindRoot(), "flows", "Fer.fsx")}}"
                open Fer
                flow "photos" [
                    ingest [ "count" => 420; "seed" => 3; "test_fraction" => 0.15 ]
                    augment [ "flip" => true ]
                    split [ "valid_fraction" => 0.2; "seed" => 3 ]
                    train [ model "cnn" "seed-cnn" [ "epochs" => 1; "batch_size" => 64; "seed" => 3 ]
                            model "dnn" "seed-dnn" [ "epochs" => 1; "batch_size" => 64; "seed" => 3 ] ] []
                    predict [ "tta" => "flip" ]
                ]
                """);
            var code = FlowCommand.RunAsync(new FlowRequest(script, artifacts, [], Device: "cpu", Console: false), Console.Error).GetAwaiter().GetResult();
            if (code != 0) { Console.WriteLine($"  training the run failed (exit {code})"); return; }

            int count = quick ? 40 : 200;
            var folder = Path.Combine(root, "photos");
            Directory.CreateDirectory(folder);
            int expectedFaces = MakePhotos(astronaut, folder, count);
            foreach (var (label, noDetect) in new[] { ("Haar detection", false), ("--no-detect", true) })
            {
                var stdout = new StringWriter();
                var clock = Stopwatch.StartNew();
                code = PredictCommand.Run(new PredictRequest([folder], artifacts, Out: Path.Combine(root, "out-" + (noDetect ? "nodetect" : "detect")), NoDetect: noDetect, Device: "cpu"),
                    stdout, Console.Error);
                Console.WriteLine($"  {label}: {count} images ({expectedFaces} faces in them), exit {code}, {clock.Elapsed.TotalSeconds:0.00} s wall");
                foreach (var line in stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)) Console.WriteLine("    " + line);
            }
            HugePhoto(astronaut, root, artifacts);
        }
        finally
        {
            if (Environment.GetEnvironmentVariable("FER_BENCH_KEEP") == "1") Console.WriteLine($"  kept {root}");
            else try { Directory.Delete(root, true); } catch (IOException) { }
        }
    }

    /// <summary>A 12000x12000 PNG with the portrait pasted at 8x: `fer predict` in a child process, its resident memory sampled.</summary>
    private static void HugePhoto(string astronaut, string root, string artifacts)
    {
        var path = Path.Combine(root, "huge.png");
        using (var canvas = new Mat(12000, 12000, MatType.CV_8UC3, new Scalar(90, 110, 120)))
        using (var one = Cv2.ImRead(astronaut))
        using (var big = new Mat())
        {
            Cv2.Resize(one, big, new Size(4096, 4096));
            using (var roi = new Mat(canvas, new Rect(4000, 4000, 4096, 4096))) big.CopyTo(roi);
            Cv2.ImWrite(path, canvas, new ImageEncodingParam(ImwriteFlags.PngCompression, 1));
        }
        var fer = Path.Combine(AppContext.BaseDirectory, "fer.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { fer, "predict", path, "--artifacts", artifacts, "--out", Path.Combine(root, "out-huge"), "--device", "cpu" }) start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEndAsync();
        long peak = 0;
        while (!p.WaitForExit(20))
        {
            try { p.Refresh(); peak = Math.Max(peak, p.WorkingSet64); } catch (InvalidOperationException) { }
        }
        Console.WriteLine($"  12000x12000 PNG ({new FileInfo(path).Length / 1e6:0.0} MB): exit {p.ExitCode}, {clock.Elapsed.TotalSeconds:0.0} s, peak resident memory of fer about {peak / 1e6:0} MB");
        foreach (var line in output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Console.WriteLine("    " + line);
    }

    /// <summary>Writes the photos; returns how many faces they hold.</summary>
    private static int MakePhotos(string astronaut, string folder, int count)
    {
        using var one = Cv2.ImRead(astronaut);
        using var row = new Mat();
        Cv2.HConcat([one, one], row);
        using var mosaic = new Mat();
        Cv2.VConcat([row, row], mosaic);
        int faces = 0;
        for (int i = 0; i < count; i++)
        {
            bool four = i % 4 == 0;
            var source = four ? mosaic : one;
            int side = four ? 1024 : 400 + (i * 37) % 600;
            using var resized = new Mat();
            Cv2.Resize(source, resized, new Size(side, side), interpolation: InterpolationFlags.Area);
            using var rotation = Cv2.GetRotationMatrix2D(new Point2f(side / 2f, side / 2f), four ? 0 : (i % 7) - 3, 1.0);
            using var turned = new Mat();
            Cv2.WarpAffine(resized, turned, rotation, resized.Size(), borderMode: BorderTypes.Reflect);
            if (i % 2 == 1) Cv2.Flip(turned, turned, FlipMode.Y);
            Cv2.ImWrite(Path.Combine(folder, $"img{i:000}{(i % 3 == 0 ? ".jpg" : ".png")}"), turned);
            faces += four ? 4 : 1;
        }
        return faces;
    }
}

using System.Diagnostics;
using Fer.Core.Photos;
using OpenCvSharp;

namespace Fer.Bench;

/// <summary>
/// Haar against YuNet on the same photos: faces found and faces/s (best of 5 passes). The photos are scikit-image's
/// samples from Debian's python3-skimage (astronaut: one face; camera: one man, in profile-ish; chelsea: a cat; coffee:
/// no face) and a 2x2 mosaic of the astronaut (four faces), fetched with `apt-get download` (no root needed).
/// YuNet runs when its model is found ($FER_YUNET_MODEL or ~/.cache/fer/models/, see README); otherwise its column
/// says why not.
/// </summary>
public sealed class DetectorBenchmark : IBenchmark
{
    public string Name => "detectors";
    public string Description => "Haar vs YuNet: faces found and faces/s on scikit-image's sample photos";

    public void Run(bool quick)
    {
        var photos = SamplePhotos();
        if (photos.Count == 0) { Console.WriteLine("no sample photos (apt-get download python3-skimage failed)"); return; }
        var finders = new List<(string Name, Func<IFaceFinder>? Make, string? Why)>
        {
            ("haar", () => new CascadeFaceFinder(CascadeFaceFinder.DefaultCascade), File.Exists(CascadeFaceFinder.DefaultCascade) ? null : "no Haar cascade (apt-get install opencv-data)"),
        };
        var yunet = YuNetFaceFinder.DefaultModel();
        finders.Add(("yunet", yunet is null ? null : () => new YuNetFaceFinder(yunet), yunet is null ? $"not measured: no model ({YuNetFaceFinder.DownloadHint})" : null));
        int passes = quick ? 2 : 5;
        Console.WriteLine($"{"photo",-22} {"size",-10} " + string.Join(" ", finders.Select(f => $"{f.Name + " faces",-11} {f.Name + " ms",-9}")));
        var totals = finders.ToDictionary(f => f.Name, _ => (Faces: 0, Seconds: 0.0));
        foreach (var (name, gray) in photos)
        {
            var cells = new List<string>();
            foreach (var (finderName, make, why) in finders)
            {
                if (make is null) { cells.Add($"{"-",-11} {"-",-9}"); continue; }
                using var finder = make();
                finder.Find(gray); // warm-up
                double best = double.MaxValue;
                int faces = 0;
                for (int i = 0; i < passes; i++)
                {
                    var clock = Stopwatch.StartNew();
                    faces = finder.Find(gray).Count;
                    best = Math.Min(best, clock.Elapsed.TotalSeconds);
                }
                var t = totals[finderName];
                totals[finderName] = (t.Faces + faces, t.Seconds + best);
                cells.Add($"{faces,-11} {best * 1000,-9:F1}");
            }
            Console.WriteLine($"{name,-22} {gray.Width + "x" + gray.Height,-10} " + string.Join(" ", cells));
        }
        foreach (var (finderName, _, why) in finders)
            Console.WriteLine(why is not null ? $"{finderName}: {why}"
                : $"{finderName}: {totals[finderName].Faces} faces in {totals[finderName].Seconds:F3} s of detection = {totals[finderName].Faces / totals[finderName].Seconds:F1} faces/s, {photos.Count / totals[finderName].Seconds:F1} photos/s");
        foreach (var (_, gray) in photos) gray.Dispose();
    }

    /// <summary>The grayscale sample photos and a 2x2 mosaic of the astronaut, from python3-skimage's .deb.</summary>
    private static List<(string Name, Mat Gray)> SamplePhotos()
    {
        var dir = Path.Combine(Path.GetTempPath(), "fer-bench-skimage");
        var data = Path.Combine(dir, "x", "usr", "lib", "python3", "dist-packages", "skimage", "data");
        if (!File.Exists(Path.Combine(data, "coffee.png")))
        {
            Directory.CreateDirectory(dir);
            if (Exec(dir, "apt-get", "download", "python3-skimage") != 0) return [];
            var deb = Directory.GetFiles(dir, "python3-skimage_*.deb").FirstOrDefault();
            if (deb is null || Exec(dir, "dpkg", "-x", deb, "x") != 0) return [];
        }
        var photos = new List<(string, Mat)>();
        foreach (var name in new[] { "astronaut", "camera", "chelsea", "coffee" })
            photos.Add(($"{name}.png", Cv2.ImRead(Path.Combine(data, $"{name}.png"), ImreadModes.Grayscale)));
        var astronaut = photos[0].Item2;
        var mosaic = new Mat();
        using (var top = new Mat())
        using (var bottom = new Mat())
        {
            Cv2.HConcat([astronaut, astronaut], top);
            Cv2.HConcat([astronaut, astronaut], bottom);
            Cv2.VConcat([top, bottom], mosaic);
        }
        photos.Add(("astronaut 2x2 mosaic", mosaic));
        return photos;
    }

    private static int Exec(string dir, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(start)!;
            process.StandardOutput.ReadToEnd();
            process.StandardError.ReadToEnd();
            return process.WaitForExit(300_000) ? process.ExitCode : -1;
        }
        catch (System.ComponentModel.Win32Exception) { return -1; }
    }
}

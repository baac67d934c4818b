using System.Diagnostics;
using Fer.Core.Explain;
using Fer.Core.Plots;

namespace Fer.Bench;

/// <summary>
/// The explanation figures the visualize stage draws, on synthetic 48x48 faces and smooth heatmaps (no model): the
/// saliency rows with Grad-CAM overlays (7 rows), a method grid (7 images: image, map, overlay), the sanity rows
/// (8 methods x 4 rows) and a 64-tile filter grid. Prints milliseconds per figure (mean of the repeats after one
/// warm-up). FER_BENCH_FIGURES names a folder to keep the last PNG of each kind in.
/// </summary>
public sealed class FiguresBenchmark : IBenchmark
{
    private const int Side = 48, Images = 7;
    private static readonly string[] ClassNames = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"];

    public string Name => "figures";
    public string Description => "explanation figures (saliency rows, method grid, sanity rows, filter grid) on synthetic 48x48 faces";

    public void Run(bool quick)
    {
        int repeats = quick ? 3 : 20;
        var keep = Environment.GetEnvironmentVariable("FER_BENCH_FIGURES");
        var directory = string.IsNullOrEmpty(keep) ? Path.Combine(Path.GetTempPath(), "fer-bench-figures-" + Guid.NewGuid().ToString("N")) : keep;
        Directory.CreateDirectory(directory);
        try
        {
            var images = Faces(Images);
            var saliency = new SaliencyResult(Blobs(Images, 5, 0), [3, 4, 5, 3, 4, 5, 6], Side) { Method = "Vanilla gradient" };
            var gradCam = new SaliencyResult(Blobs(Images, 1, 1), saliency.TargetClasses, Side) { Method = "Grad-CAM at conv2d_6" };
            var masked = images.Select((v, i) => saliency.Maps[i] > 0.5f ? v : 0.45f).ToArray();
            var masking = new MaskingResult(masked, [3, 4, 5, 3, 4, 5, 6], [0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f],
                [3, 4, 2, 3, 0, 5, 6], [0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f], 5 / 7.0) { KeepFraction = 0.3 };
            var titles = Enumerable.Range(0, Images).Select(i => $"image {i} (true {ClassNames[i]})").ToList();
            var methods = Enumerable.Range(0, 8).Select(m => $"method{m}").ToList();
            var trained = methods.ToDictionary(m => m, m => new SaliencyResult(Blobs(1, 3, methods.IndexOf(m)), [3], Side));
            var steps = Enumerable.Range(1, 3).Select(k => new SanityStep($"layer{k}", 3 * k,
                methods.ToDictionary(m => m, m => new SaliencyResult(Blobs(1, 3, 10 * k + methods.IndexOf(m)), [3], Side)),
                methods.ToDictionary(m => m, m => 0.9 - 0.3 * k + 0.05 * methods.IndexOf(m)))).ToList();
            var sanity = new SanityResult(trained, steps, 9);
            var filters = new FilterAscentResult("conv2d_1", Faces(64), new float[64], Enumerable.Repeat(1.5f, 64).ToArray(), Side, 0) { Steps = 200 };

            Console.WriteLine($"  {"figure",-44} {"ms each",8} {"size",10}");
            Time("saliency rows, 7 rows x 4 tiles + colour bars", "saliency_rows.png", p =>
                ExplanationFigures.SaveSaliencyRows(p, images, Side, titles, saliency, masking, gradCam, ClassNames));
            Time("method grid, 7 images x (image, map, overlay)", "method_grid.png", p =>
                ExplanationFigures.SaveMethodGrid(p, images, Side, titles, gradCam, ClassNames, "Grad-CAM at conv2d_6, cnn",
                    "deletion AUC 0.123 (random 0.456), insertion AUC 0.789 (0.321),\nROAD MoRF 0.111 / LeRF 0.222"));
            Time("sanity rows, 4 rows x 8 methods", "sanity_rows.png", p =>
                ExplanationFigures.SaveSanityRows(p, images.AsSpan(0, Side * Side).ToArray(), Side, sanity, methods, methods, 0, "Sanity check: cnn, image 0"));
            Time("filter grid, 64 tiles", "filters.png", p => ExplanationFigures.SaveFilterGrid(p, filters, "Filters of layer conv2d_1"));
            Console.WriteLine($"  (mean of {repeats} after a warm-up){(string.IsNullOrEmpty(keep) ? "" : $"; PNGs in {directory}")}");
        }
        finally
        {
            if (string.IsNullOrEmpty(keep)) Directory.Delete(directory, recursive: true);
        }

        void Time(string what, string file, Action<string> draw)
        {
            var path = Path.Combine(directory, file);
            draw(path);
            var watch = Stopwatch.StartNew();
            for (int r = 0; r < repeats; r++) draw(path);
            Console.WriteLine($"  {what,-44} {watch.Elapsed.TotalMilliseconds / repeats,8:0.0} {new FileInfo(path).Length / 1024.0,8:0} KB");
        }
    }

    /// <summary>A bright oval with dark eyes and mouth on a darker background, shifted per image.</summary>
    private static float[] Faces(int count)
    {
        var pixels = new float[count * Side * Side];
        for (int i = 0; i < count; i++)
            for (int y = 0; y < Side; y++)
                for (int x = 0; x < Side; x++)
                {
                    double cx = 24 + i % 5 - 2, cy = 24 + i % 3 - 1;
                    double face = Math.Pow((x - cx) / 17.0, 2) + Math.Pow((y - cy) / 21.0, 2) < 1 ? 0.55 + 0.3 * (1 - y / 48.0) : 0.15;
                    bool eye = Math.Pow(x - (cx - 7), 2) + Math.Pow(y - cy + 6, 2) < 6 || Math.Pow(x - (cx + 7), 2) + Math.Pow(y - cy + 6, 2) < 6;
                    bool mouth = Math.Abs(y - cy - 9) < 2 && Math.Abs(x - cx) < 8;
                    pixels[(i * Side + y) * Side + x] = (float)(eye || mouth ? 0.05 : face);
                }
        return pixels;
    }

    /// <summary>Per image a sum of Gaussian blobs (sharp ones when <paramref name="blobs"/> is large), min-max scaled to 0..1.</summary>
    private static float[] Blobs(int count, int blobs, int seed)
    {
        var random = new Random(seed);
        var maps = new float[count * Side * Side];
        for (int i = 0; i < count; i++)
        {
            var map = maps.AsSpan(i * Side * Side, Side * Side);
            for (int b = 0; b < blobs; b++)
            {
                double bx = random.Next(8, 40), by = random.Next(8, 40), width = blobs > 2 ? 2 + random.NextDouble() * 3 : 10, weight = 0.3 + random.NextDouble();
                for (int y = 0; y < Side; y++)
                    for (int x = 0; x < Side; x++)
                        map[y * Side + x] += (float)(weight * Math.Exp(-((x - bx) * (x - bx) + (y - by) * (y - by)) / (2 * width * width)));
            }
            float min = float.MaxValue, max = float.MinValue;
            foreach (var v in map) { min = Math.Min(min, v); max = Math.Max(max, v); }
            for (int k = 0; k < map.Length; k++) map[k] = (map[k] - min) / (max - min);
        }
        return maps;
    }
}

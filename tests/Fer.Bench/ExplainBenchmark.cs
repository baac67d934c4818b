using System.Diagnostics;
using System.Text.Json;
using Fer.Core.Data;
using Fer.Core.Explain;
using Fer.Core.Models;
using Fer.Core.Storage;
using TorchSharp;

namespace Fer.Bench;

/// <summary>
/// Every attribution method on the quickstart's 7 explained images (the first original validation face of each class)
/// with the quickstart's trained seed CNN, then the faithfulness curves and the sanity check as the visualize stage
/// runs them with its defaults. Reads the weights and validation set from a quickstart cache: the artifacts folder is
/// FER_BENCH_ARTIFACTS (default: artifacts), filled by `fer run flows/quickstart.fsx`. Prints wall and CPU seconds
/// (CPU seconds / cores is what an idle machine would take at best), so the figures can be read on a loaded machine.
/// </summary>
public sealed class ExplainBenchmark : IBenchmark
{
    public string Name => "explain";
    public string Description => "every attribution method, faithfulness (deletion, insertion, ROAD) and the sanity check on the quickstart's 7 images";

    public void Run(bool quick)
    {
        var artifacts = Environment.GetEnvironmentVariable("FER_BENCH_ARTIFACTS") ?? "artifacts";
        var weights = Newest(Path.Combine(artifacts, "cache", "train.cnn"), "model.pt", d => File.ReadAllText(Path.Combine(d, "output.json")).Contains("\"seed-cnn\""));
        var validPath = Newest(Path.Combine(artifacts, "cache", "split"), "valid.parquet", _ => true);
        if (weights is null || validPath is null)
        {
            Console.WriteLine($"  no quickstart cache under {Path.GetFullPath(artifacts)} (train.cnn with seed-cnn, split): run `fer run flows/quickstart.fsx` first, or set FER_BENCH_ARTIFACTS");
            return;
        }
        var valid = ParquetTensorStore.ReadFacesAsync(validPath).GetAwaiter().GetResult();
        var rows = new List<int>();
        for (int c = 0; c < valid.ClassNames.Count; c++)
            rows.AddRange(Enumerable.Range(0, valid.Count).Where(i => valid.Labels[i] == c && !valid.Flipped[i]).Take(1));
        var images = valid.Select(rows.ToArray());
        using var model = new SeedCnn(valid.ClassNames.Count, valid.Side);
        model.load(weights);
        model.eval();
        using var x = images.ImagesTensor();
        Console.WriteLine($"  weights {weights}; {images.Count} images, ids {string.Join(",", images.Ids)}");

        var settings = new AttributionSettings { IgSteps = quick ? 16 : 32, OcclusionStride = 6 };
        Saliency.Vanilla(model, x); // warm-up
        var maps = new Dictionary<string, SaliencyResult>();
        Console.WriteLine($"  {"method",-22} {"wall s",7} {"cpu s",7}");
        foreach (var method in AttributionMethods.All)
        {
            var (result, wall, cpu) = Timed(() => method.Explain(model, x, settings));
            maps[method.Name] = result;
            Console.WriteLine($"  {method.Name,-22} {wall,7:0.00} {cpu,7:0.00}   {result.Method}");
        }
        foreach (var baseline in Enum.GetValues<IgBaseline>())
        {
            var ig = Attributions.IntegratedGradientsRaw(model, x, 64, baseline);
            var errors = Enumerable.Range(0, ig.Count).Select(ig.CompletenessError).ToArray();
            Console.WriteLine($"  Integrated Gradients, 64 steps, {baseline.ToString().ToLowerInvariant()} baseline: completeness error mean {errors.Average():P3}, worst {errors.Max():P3}");
        }

        var options = new FaithfulnessOptions(Steps: 10);
        var faithfulness = new Dictionary<string, FaithfulnessResult>();
        var (_, fWall, fCpu) = Timed(() =>
        {
            foreach (var (name, result) in maps) faithfulness[name] = Faithfulness.Measure(model, x, result, options);
            faithfulness["random map"] = Faithfulness.MeasureRandom(model, x, maps["saliency"].TargetClasses, options);
            return 0;
        });
        var (sanity, sWall, sCpu) = Timed(() => SanityCheck.CascadingRandomisation(model, x.narrow(0, 0, 2), AttributionMethods.All, settings,
            checkpoints: 3, seed: 0, maps.ToDictionary(p => p.Key, p => First(p.Value, 2))));
        Console.WriteLine($"  faithfulness of {maps.Count} methods + random maps ({options.Steps + 1} deletion/insertion points, {options.Fractions.Count} ROAD fractions): {fWall:0.00} s wall, {fCpu:0.00} s cpu");
        Console.WriteLine($"  sanity check, {sanity.Steps.Count} steps on 2 images: {sWall:0.00} s wall, {sCpu:0.00} s cpu");
        Console.WriteLine();
        Console.WriteLine("  | method | deletion AUC | insertion AUC | ROAD MoRF | ROAD LeRF | score | sanity rho |");
        Console.WriteLine("  | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (name, f) in faithfulness.OrderByDescending(p => p.Value.Score))
        {
            string rho = sanity.Trained.ContainsKey(name) ? $"{sanity.FinalCorrelation(name):0.00}{(sanity.DependsOnModel(name) ? "" : " (flagged)")}" : "-";
            Console.WriteLine($"  | {name} | {f.DeletionAuc:0.000} | {f.InsertionAuc:0.000} | {f.RoadMorfScore:0.000} | {f.RoadLerfScore:0.000} | {f.Score:0.000} | {rho} |");
        }
    }

    private static (T Result, double Wall, double Cpu) Timed<T>(Func<T> work)
    {
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var result = work();
        process.Refresh();
        return (result, clock.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu).TotalSeconds);
    }

    private static SaliencyResult First(SaliencyResult r, int k) =>
        new(r.Maps.AsSpan(0, k * r.Side * r.Side).ToArray(), r.TargetClasses.Take(k).ToArray(), r.Side) { Method = r.Method };

    /// <summary>The file of that name in the newest cache entry of a stage that passes the filter.</summary>
    private static string? Newest(string stageDir, string file, Func<string, bool> accept) =>
        !Directory.Exists(stageDir) ? null
            : Directory.EnumerateDirectories(stageDir).Where(d => File.Exists(Path.Combine(d, file)) && accept(d))
                .OrderByDescending(Directory.GetLastWriteTimeUtc).Select(d => Path.Combine(d, file)).FirstOrDefault();
}

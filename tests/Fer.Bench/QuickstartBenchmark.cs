using System.Diagnostics;
using System.Text.Json.Nodes;
using Fer.Flow.Cli;

namespace Fer.Bench;

/// <summary>The README's main command, timed: flows/quickstart.fsx from an empty artifacts folder, then again from cache.</summary>
public sealed class QuickstartBenchmark : IBenchmark
{
    public string Name => "quickstart";
    public string Description => "flows/quickstart.fsx end to end on a fresh artifacts folder, then a fully cached rerun";

    public void Run(bool quick)
    {
        var root = FindRoot();
        var artifacts = Path.Combine(Path.GetTempPath(), "fer-bench-quickstart-" + Guid.NewGuid().ToString("N")[..8]);
        string[] sets = quick ? ["count=1000", "epochs=1"] : [];
        try
        {
            foreach (var label in new[] { "fresh", "cached" })
            {
                var clock = Stopwatch.StartNew();
                var code = FlowCommand.RunAsync(new FlowRequest(Path.Combine(root, "flows", "quickstart.fsx"), artifacts, sets, Device: "cpu", Console: false), Console.Error)
                    .GetAwaiter().GetResult();
                Console.WriteLine($"  {label} run: {clock.Elapsed.TotalSeconds:0.0} s (exit code {code})");
            }
            var run = Directory.EnumerateDirectories(Path.Combine(artifacts, "runs")).Order().First();
            var record = Fer.Flow.Pipeline.RunRecord.TryRead(run);
            foreach (var stage in record?.Stages ?? []) Console.WriteLine($"    {stage.Stage,-10} {stage.Seconds,7:0.0} s");
            var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")))!;
            foreach (var (name, m) in metrics["models"]!.AsObject())
                Console.WriteLine($"  {name}: best validation accuracy {m!["best_valid_accuracy"]}, {m["images_per_second"]} images/s");
            Console.WriteLine($"  ensemble: validation accuracy {metrics["ensemble"]?["valid_accuracy"]}, test accuracy {metrics["ensemble"]?["test"]?["accuracy"]}");
        }
        finally
        {
            try { Directory.Delete(artifacts, true); } catch (IOException) { }
        }
    }

    internal static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Fer.sln"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}

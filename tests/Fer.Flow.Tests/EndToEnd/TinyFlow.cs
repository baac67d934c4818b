using System.Text.Json;
using Fer.Flow.Cli;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>A whole flow on 280 synthetic faces (40 a class) with tiny settings, run in-process through the CLI code.</summary>
public sealed class TinyFlow : IDisposable
{
    public TempDir Dir { get; } = new();
    public string Script { get; }
    public string Artifacts => Dir["artifacts"];

    public TinyFlow(string? trainFile = null, string? extraStages = null)
    {
        Script = Dir["tiny.fsx"];
        File.WriteAllText(Script, $$"""
            #load @"{{Repo.Flow("Fer.fsx")}}"
            open Fer
            let count = param "count" 280
            let seed = param "seed" 3
            let trainFile = param "train" @"{{trainFile ?? ""}}"
            let epochs = param "epochs" 2
            flow "tiny" [
                ingest [ "train" => trainFile; "count" => count; "seed" => seed; "test_fraction" => 0.15 ]
                augment [ "flip" => true ]
                split [ "valid_fraction" => 0.2; "seed" => seed ]
                train [ model "cnn" "seed-cnn" [ "epochs" => epochs; "batch_size" => 64; "seed" => seed ]
                        model "dnn" "seed-dnn" [ "epochs" => epochs; "batch_size" => 64; "seed" => seed ] ] []
                predict [ "tta" => "flip" ]
                visualize [ "members" => "cnn"; "ascent_steps" => 8; "max_filters" => 8; "smoothgrad_samples" => 4; "ig_steps" => 4
                            "occlusion_stride" => 12; "faithfulness_steps" => 2; "sanity_layers" => 1 ]
                {{extraStages ?? "report []"}}
            ]
            """);
    }

    private static readonly SemaphoreSlim FinishedGate = new(1, 1);
    private static TinyFlow? _finished;

    /// <summary>
    /// A new tiny flow whose artifacts folder is a copy of one finished run of the default flow, made once per test
    /// process (about 25 s on 2 cores) and copied for each test that starts from a finished run (well under a second).
    /// The cache is content-addressed and holds no paths, so every stage of the copy is a hit; the copied run folder is
    /// the latest run, with the first run's log (every stage a miss).
    /// </summary>
    /// <param name="extraStages">The copy's script's last stages (default: the report), as in the constructor.</param>
    public static async Task<TinyFlow> CopyOfFinishedRunAsync(string? extraStages = null)
    {
        await FinishedGate.WaitAsync();
        try
        {
            if (_finished is null)
            {
                var flow = new TinyFlow();
                var (code, errors) = await flow.RunAsync();
                if (code != 0) { flow.Dispose(); throw new InvalidOperationException($"the shared tiny run failed (exit {code}): {errors}"); }
                AppDomain.CurrentDomain.ProcessExit += (_, _) => flow.Dispose();
                _finished = flow;
            }
        }
        finally { FinishedGate.Release(); }
        var copy = new TinyFlow(extraStages: extraStages);
        CopyFolder(_finished.Artifacts, copy.Artifacts);
        return copy;
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var folder in Directory.EnumerateDirectories(from)) CopyFolder(folder, Path.Combine(to, Path.GetFileName(folder)));
    }

    public async Task<(int Code, string Errors)> RunAsync(params string[] args)
    {
        var sets = new List<string>();
        var mode = Fer.Flow.Pipeline.RunMode.Default;
        string? target = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--set": sets.Add(args[++i]); break;
                case "--from": mode = Fer.Flow.Pipeline.RunMode.From; target = args[++i]; break;
                case "--only": mode = Fer.Flow.Pipeline.RunMode.Only; target = args[++i]; break;
                default: throw new ArgumentException(args[i]);
            }
        }
        var errors = new StringWriter();
        var code = await FlowCommand.RunAsync(new FlowRequest(Script, Artifacts, sets, mode, target, "cpu", Console: false), errors);
        return (code, errors.ToString());
    }

    /// <summary>The flow with the given --device (as the command line passes it, unchecked).</summary>
    public async Task<(int Code, string Errors)> RunWithDeviceAsync(string device)
    {
        var errors = new StringWriter();
        var code = await FlowCommand.RunAsync(new FlowRequest(Script, Artifacts, [], Device: device, Console: false), errors);
        return (code, errors.ToString());
    }

    public string LatestRunDir() =>
        Directory.EnumerateDirectories(Path.Combine(Artifacts, "runs")).OrderBy(d => Directory.GetCreationTimeUtc(d)).ThenBy(d => d).Last();

    /// <summary>The CLEF events of the latest run, as JSON objects.</summary>
    public List<JsonElement> LatestEvents() =>
        File.ReadAllLines(Path.Combine(LatestRunDir(), "log.clef")).Where(l => l.Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    /// <summary>Stage name -> "hit"/"miss" from the latest run's log.</summary>
    public Dictionary<string, string> CacheStatuses() => LatestEvents()
        .Where(e => e.TryGetProperty("CacheStatus", out _))
        .ToDictionary(e => e.GetProperty("Stage").GetString()!, e => e.GetProperty("CacheStatus").GetString()!);

    public void Dispose() => Dir.Dispose();
}

/// <summary>
/// Whole-flow tests run one at a time, beside the unit tests. Split into two collections they ran side by side, and
/// each took about twice as long (they keep both cores busy), so the suite was no faster (3 min 6 s against 2 min 43 s).
/// </summary>
public static class EndToEndCollection
{
    public const string Name = "end-to-end";
}

using Fer.Flow.Cli;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>flows/custom.fsx: a stage and a model written in F#, planned, trained, explained and fingerprinted with the script.</summary>
[Collection("EndToEnd")]
public class CustomFlowTests
{
    private static readonly string[] Tiny =
    [
        "--set", "count=420", "--set", "epochs=1", "--set", "visualize.ascent_steps=3", "--set", "visualize.max_filters=4",
        "--set", "visualize.smoothgrad_samples=2", "--set", "train.batch_size=64", "--set", "visualize.ig_steps=4",
        "--set", "visualize.occlusion_stride=12", "--set", "visualize.faithfulness_steps=2", "--set", "visualize.sanity_layers=1",
        // The seed report's three methods: the others have their end-to-end test in FlowEndToEndTests.
        "--set", "visualize.methods=saliency,gradcam,filters",
    ];

    [Fact]
    public async Task AnFSharpStageAndModelRunAndEditingTheStageRecomputesItAndOnlyWhatFollows()
    {
        using var dir = new TempDir();
        var script = dir["custom.fsx"];
        File.Copy(Repo.Flow("Fer.fsx"), dir["Fer.fsx"]);
        File.Copy(Repo.Flow("custom.fsx"), script);
        var artifacts = dir["artifacts"];
        async Task<(int, string)> Run()
        {
            var errors = new StringWriter();
            var sets = Tiny.Where((_, i) => i % 2 == 1).ToList();
            return (await FlowCommand.RunAsync(new FlowRequest(script, artifacts, sets, Device: "cpu", Console: false), errors), errors.ToString());
        }

        var listing = new StringWriter();
        Assert.Equal(0, FlowCommand.ListStages(new FlowRequest(script, artifacts, Tiny.Where((_, i) => i % 2 == 1).ToList()), listing, TextWriter.Null));
        Assert.Matches(@"equalize\s+equalize\s+[0-9a-f]{16}\s+missing\s+augment", listing.ToString());
        Assert.Matches(@"split\s+split\s+[0-9a-f]{16}\s+missing\s+equalize", listing.ToString());
        Assert.Matches(@"train\.fsharp\s+train-member\s+[0-9a-f]{16}\s+missing\s+split", listing.ToString());

        var (code, errors) = await Run();
        Assert.True(code == 0, errors);
        var flow = new TinyFlowView(artifacts);
        Assert.All(flow.CacheStatuses().Where(kv => kv.Key != "report"), kv => Assert.Equal("miss", kv.Value));
        var run = flow.LatestRunDir();
        foreach (var figure in new[] { "train_fsharp.png", "visualize_fsharp_saliency.png", "visualize_fsharp_filters_conv2d_2.png", "train_validation_comparison.png" })
            Assert.True(File.Exists(Path.Combine(run, "figures", figure)), figure);
        var record = Fer.Flow.Pipeline.RunRecord.TryRead(run)!;
        var fsharp = record.MetricsOf<Fer.Flow.Stages.MemberMetrics>().Single(m => m.Node == "train.fsharp").Metrics;
        Assert.Equal("fsharp-cnn", fsharp.Model);
        Assert.Equal(Fer.Core.Models.ModelFamily.Convolutional, fsharp.Family);
        Assert.Equal(0.25, fsharp.Hyperparameters["dropout"]);
        Assert.Contains("fsharp", record.MetricsOf<Fer.Flow.Stages.ExplanationMetrics>().Single().Metrics.Members.Keys);
        // The equalised faces really are equalised: every image spans the whole grey range.
        var split = Directory.EnumerateFiles(Path.Combine(artifacts, "cache", "split"), "train.parquet", SearchOption.AllDirectories).Single();
        var faces = await Fer.Core.Storage.ParquetTensorStore.ReadFacesAsync(split);
        for (int i = 0; i < 5; i++)
        {
            var image = faces.Image(i).ToArray();
            Assert.Equal(255, image.Max());
            Assert.True(image.Min() < 20, $"image {i} min {image.Min()}");
        }

        // Edit the body of the script's stage: it and what follows recompute; ingest and augment stay cached.
        File.WriteAllText(script, File.ReadAllText(script).Replace("255.0 * float (cdf[p] - first)", "254.0 * float (cdf[p] - first)"));
        (code, errors) = await Run();
        Assert.True(code == 0, errors);
        var statuses = flow.CacheStatuses();
        Assert.Equal("hit", statuses["ingest"]);
        Assert.Equal("hit", statuses["augment"]);
        foreach (var node in new[] { "equalize", "split", "train.cnn", "train.fsharp", "predict", "visualize" })
            Assert.Equal("miss", statuses[node]);
    }

    [Theory]
    [InlineData("split.valid_fraction=1.5", "stage split: valid_fraction must be a number in (0, 1), got 1.5")]
    [InlineData("train.cnn.epochs=0", "stage train.cnn: epochs must be an integer in [1, 100000], got 0")]
    [InlineData("ingest.seed=99999999999", "stage ingest: seed expects an integer that fits in 32 bits, got 99999999999")]
    [InlineData("equalize.strength=lots", "stage equalize: strength expects a number, got 'lots'")]
    [InlineData("train.fsharp.dropout=x", "stage train.fsharp: hyperparameter dropout of model fsharp-cnn expects a number, got 'x'")]
    [InlineData("visualize.methods=saliency,magic", "stage visualize: methods: unknown method 'magic'")]
    public async Task BadSettingsAreRejectedAtPlanTimeBeforeAnythingRuns(string set, string message)
    {
        using var dir = new TempDir();
        var errors = new StringWriter();
        var code = await FlowCommand.RunAsync(new FlowRequest(Repo.Flow("custom.fsx"), dir["artifacts"], [set], Device: "cpu", Console: false), errors);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.StartsWith("error: " + message, errors.ToString());
        Assert.Single(errors.ToString().Trim().Split('\n'));
        Assert.False(Directory.Exists(dir["artifacts/runs"]), "a run started");
    }

    [Fact]
    public async Task AMemberNameThatIsNoFolderNameIsRejected()
    {
        using var dir = new TempDir();
        var script = dir["bad.fsx"];
        File.WriteAllText(script, $"#load @\"{Repo.Flow("Fer.fsx")}\"\nopen Fer\nflow \"bad\" [ ingest []; augment []; split []; train [ model \"../x\" \"seed-cnn\" [] ] [] ]\n");
        var errors = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, await FlowCommand.RunAsync(new FlowRequest(script, dir["artifacts"], Console: false), errors));
        Assert.Contains("'train.../x' is not a valid stage or member name", errors.ToString());
    }

    [Theory]
    [InlineData("exit 0")]
    [InlineData("System.Environment.Exit 0")]
    public void AScriptThatEndsTheProcessIsExitTwoNotASilentSuccess(string ending)
    {
        using var dir = new TempDir();
        var script = dir["exits.fsx"];
        File.WriteAllText(script, $"#load @\"{Repo.Flow("Fer.fsx")}\"\nopen Fer\n{ending}\n");
        using var fer = new FerProcess("stages", script);
        Assert.Equal(ExitCodes.BadInput, fer.WaitForExit(TimeSpan.FromMinutes(2)));
        Assert.Contains(fer.Output, l => l.Contains("exits.fsx: the script ended the process while it was being evaluated"));
    }
}

/// <summary>Reads an artifacts folder's latest run the way TinyFlow does.</summary>
public sealed class TinyFlowView(string artifacts)
{
    public string LatestRunDir() =>
        Directory.EnumerateDirectories(Path.Combine(artifacts, "runs")).OrderBy(d => Directory.GetCreationTimeUtc(d)).ThenBy(d => d).Last();

    public Dictionary<string, string> CacheStatuses() => File.ReadAllLines(Path.Combine(LatestRunDir(), "log.clef")).Where(l => l.Length > 0)
        .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("CacheStatus", out _))
        .ToDictionary(e => e.GetProperty("Stage").GetString()!, e => e.GetProperty("CacheStatus").GetString()!);
}

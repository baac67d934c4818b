using Fer.Flow.Cli;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>flows/custom.fsx: a stage and a model written in F#, planned, trained, explained and fingerprinted with the script.</summary>
[Collection(EndToEndCollection.Name)]
public class CustomFlowTests
{
    private static readonly string[] Tiny =
    [
        "--set", "count=140", "--set", "epochs=1", "--set", "visualize.ascent_steps=3", "--set", "visualize.max_filters=4",
        "--set", "visualize.smoothgrad_samples=2", "--set", "train.batch_size=64", "--set", "visualize.ig_steps=4",
        "--set", "visualize.occlusion_stride=12", "--set", "visualize.faithfulness_steps=2", "--set", "visualize.sanity_layers=1",
        // The seed report's three methods, for the script's model: the others, and the seed CNN's explanations, have
        // their end-to-end tests in FlowEndToEndTests.
        "--set", "visualize.methods=saliency,gradcam,filters", "--set", "visualize.members=fsharp",
    ];

    [SkippableFact]
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

        // fer predict rebuilds the script's model from the script that trained it: on the run's own test faces it gives
        // the run's probabilities. (Last, as it needs OpenCV to read the images: where that cannot load, it skips.)
        Fer.Flow.Tests.Photos.PhotoTestData.SkipUnlessOpenCvLoads();
        var second = flow.LatestRunDir();
        var first = Directory.EnumerateDirectories(Path.Combine(artifacts, "runs")).Single(d => d != second);
        var (_, splits) = await Fer.Core.Storage.PredictionTable.ReadAsync(Path.Combine(second, "probabilities.parquet"));
        var expected = splits.Single(x => x.Split == "test");
        var secondRecord = Fer.Flow.Pipeline.RunRecord.TryRead(second)!;
        var splitReport = secondRecord.Stages.Single(x => x.Kind == "split");
        var splitOut = (Fer.Flow.Stages.SplitFaces)Fer.Flow.Pipeline.OutputStore.Read(typeof(Fer.Flow.Stages.SplitFaces),
            new Fer.Flow.Cache.StageCache(Path.Combine(artifacts, "cache")).Lookup(splitReport.Stage, splitReport.Fingerprint).Dir);
        var test = await splitOut.Test.ReadAsync();
        Directory.CreateDirectory(dir["crops"]);
        for (int i = 0; i < 4; i++)
        {
            using var m = OpenCvSharp.Mat.FromPixelData(test.Side, test.Side, OpenCvSharp.MatType.CV_8UC1, test.Image(i).ToArray());
            Assert.True(OpenCvSharp.Cv2.ImWrite(Path.Combine(dir["crops"], $"t{i}.png"), m));
        }
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(0 == PredictCommand.Run(new PredictRequest([dir["crops"]], artifacts, Out: dir["out"], NoDetect: true, Device: "cpu"), stdout, stderr),
            stderr.ToString());
        var rows = File.ReadAllLines(Path.Combine(dir["out"], "faces.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(4, rows.Count);
        Assert.Equal(test.Ids.Take(4), expected.Ids.Take(4));
        int classes = test.ClassNames.Count;
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < classes; k++) // columns file,frame,x,y,w,h,label,confidence, then one per class (6 decimals)
                Assert.InRange(Math.Abs(expected.Probabilities[i * classes + k] - double.Parse(rows[i][8 + k], System.Globalization.CultureInfo.InvariantCulture)), 0, 2e-6);
        // fer export writes the script's model like Fer's own: its state_dict and, in model.json, its registry name and layers.
        var exportErrors = new StringWriter();
        Assert.True(0 == ExportCommand.Run(artifacts, null, dir["export"], new StringWriter(), exportErrors), exportErrors.ToString());
        using (var model = System.Text.Json.JsonDocument.Parse(File.ReadAllText(dir["export/model.json"])))
        {
            var exported = model.RootElement.GetProperty("members").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "fsharp");
            Assert.Equal("fsharp-cnn", exported.GetProperty("architecture").GetString());
            Assert.NotEmpty(exported.GetProperty("state_dict").EnumerateArray());
        }
        Assert.True(new FileInfo(dir["export/fsharp.pt"]).Length > 1000);
        // PyTorch rebuilds the script's model from model.json's layer descriptions alone (where python3-torch is installed).
        if (Photos.PythonTorch.Missing is null)
            Assert.Contains("fsharp: max abs logit difference", Photos.PythonTorch.CheckExport(dir["export"]));
        // The first run's fsharp member was trained by the script before its edit: its weights may not fit, so it is refused.
        stderr = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, PredictCommand.Run(new PredictRequest([dir["crops"]], artifacts, Run: Path.GetFileName(first), Out: dir["out2"],
            NoDetect: true, Device: "cpu"), new StringWriter(), stderr));
        Assert.Contains($"{script} has changed since run {Path.GetFileName(first)} trained member fsharp with its model 'fsharp-cnn'", stderr.ToString());
        Assert.Single(stderr.ToString().Trim().Split('\n'));
    }

    [Theory]
    [InlineData("split.valid_fraction=1.5", "stage split: valid_fraction must be a number in (0, 1), got 1.5")]
    [InlineData("train.cnn.epochs=0", "stage train.cnn: epochs must be an integer in [1, 100000], got 0")]
    [InlineData("ingest.seed=99999999999", "stage ingest: seed expects an integer that fits in 32 bits, got 99999999999")]
    [InlineData("equalize.strength=lots", "stage equalize: strength expects a number, got 'lots'")]
    [InlineData("train.fsharp.dropout=x", "stage train.fsharp: hyperparameter dropout of model fsharp-cnn expects a number, got 'x'")]
    [InlineData("visualize.methods=saliency,magic", "stage visualize: methods: unknown method 'magic'")]
    [InlineData("visualize.members=cnn,rnn", "stage visualize: members: no member 'rnn'; members: cnn, fsharp")]
    [InlineData("train.cnn.nesterov=true", "stage train.cnn: Nesterov momentum needs the SGD optimizer and a momentum above 0")]
    [InlineData("train.cnn.optimizer=lion", "stage train.cnn: optimizer expects one of adam, adam_w, sgd, got 'lion'")]
    [InlineData("train.erase_probability=0.5", "stage train.cnn: augment_flip and erase_probability act on augmented batches: set augment=true")]
    [InlineData("predict.confusion_member=best", "stage predict: confusion_member: no member 'best'; members: cnn, fsharp")]
    [InlineData("visualize.gradcam_layer=dense_1", "stage visualize: gradcam_layer: layer dense_1 [1, 900] of member cnn (model seed-cnn) has no feature maps [N, C, h, w]; its layers with feature maps [N, C, h, w]: conv2d_1, zero_padding2d_1,")]
    [InlineData("visualize.filter_layer=conv2d_9", "stage visualize: filter_layer: member cnn (model seed-cnn) has no layer 'conv2d_9'; its layers with channels: conv2d_1,")]
    [InlineData("visualize.output_layer=conv2d_5", "stage visualize: output_layer: member fsharp (model fsharp-cnn) has no layer 'conv2d_5'; its layers with channels: conv2d_1, max_pooling2d_1, conv2d_2, max_pooling2d_2, dropout_1, dense_1")]
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

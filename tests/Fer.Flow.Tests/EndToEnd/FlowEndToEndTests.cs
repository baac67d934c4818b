namespace Fer.Flow.Tests.EndToEnd;

/// <summary>Whole flows through the CLI code on tiny synthetic data: outputs, cache reuse, resuming, errors.</summary>
[Collection(EndToEndCollection.Name)]
public class FlowEndToEndTests
{
    [Fact]
    public async Task AFullRunWritesEveryOutputAndASecondRunHitsEveryStage()
    {
        using var flow = await TinyFlow.CopyOfFinishedRunAsync(); // the shared first run, every stage computed (a miss)
        var run = flow.LatestRunDir();
        foreach (var file in new[] { "log.clef", "run.json", "metrics.json", "predictions.csv", "report.html",
                     "figures/train_cnn.png", "figures/train_dnn.png", "figures/train_validation_comparison.png",
                     "figures/confusion_ensemble_valid.png", "figures/visualize_cnn_saliency.png" })
            Assert.True(File.Exists(Path.Combine(run, file)), $"missing {file}");
        Assert.All(flow.CacheStatuses().Values.Where(s => s != "volatile"), s => Assert.Equal("miss", s));
        var lines = File.ReadAllLines(Path.Combine(run, "predictions.csv"));
        Assert.Equal("id,label", lines[0]);
        Assert.Equal(42, lines.Length - 1); // 15% of 280 synthetic faces are the test set
        AssertReport(Path.Combine(run, "report.html"));
        // Every saliency method's maps are cached as Parquet tensors [images, side, side] with their ids and method.
        var maps = Directory.EnumerateFiles(Path.Combine(flow.Artifacts, "cache", "visualize"), "*.parquet", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetFileName(p), p => Fer.Core.Storage.ParquetTensorStore.ReadTensorAsync(p).GetAwaiter().GetResult());
        Assert.Equal(["cnn.parquet", "cnn_eigencam.parquet", "cnn_gradcam.parquet", "cnn_guided_backprop.parquet", "cnn_guided_gradcam.parquet",
            "cnn_integrated_gradients.parquet", "cnn_occlusion.parquet", "cnn_smoothgrad.parquet"], maps.Keys.Order(StringComparer.Ordinal));
        // Every attribution method has its faithfulness and sanity numbers in metrics.json, and its figures are drawn.
        var explained = Fer.Flow.Pipeline.RunRecord.TryRead(run)!.MetricsOf<Fer.Flow.Stages.ExplanationMetrics>().Single().Metrics.Members["cnn"];
        Assert.Equal(Fer.Core.Explain.AttributionMethods.Names.Order(StringComparer.Ordinal), explained.Methods.Keys.Order(StringComparer.Ordinal));
        Assert.All(explained.Methods.Values, m => Assert.True(m.SanityRankCorrelation is not null && m.EvidenceRatio is not null && m.DeletionAuc is >= 0 and <= 1));
        Assert.NotNull(explained.RandomMap);
        foreach (var figure in new[] { "integrated_gradients", "guided_gradcam", "occlusion", "faithfulness", "sanity" })
            Assert.True(File.Exists(Path.Combine(run, "figures", $"visualize_cnn_{figure}.png")), figure);
        Assert.All(maps.Values, t => Assert.Equal(3, t.Shape.Length));
        Assert.Equal("smoothgrad", maps["cnn_smoothgrad.parquet"].Metadata["method"]);
        Assert.Equal(maps["cnn.parquet"].Metadata["ids"], maps["cnn_gradcam.parquet"].Metadata["ids"]);
        // Progress went to the log as structured events: each member's first batch, and the explanation's first of its
        // 13 planned steps (5 of the seed report, 5 more methods, faithfulness, sanity, figures).
        var events = flow.LatestEvents();
        // (A slow machine also logs later batches, 15 s apart: only the first of each member is certain.)
        Assert.Equal(["cnn", "dnn"], events.Where(e => e.TryGetProperty("Batches", out _) && e.GetProperty("Epoch").GetInt32() == 1 && e.GetProperty("Batch").GetInt32() == 1)
            .Select(e => e.GetProperty("Model").GetString()).Order(StringComparer.Ordinal));
        var predicting = events.Where(e => e.TryGetProperty("ImagesDone", out _)).ToList();
        Assert.Equal(["cnn", "dnn"], predicting.Select(e => e.GetProperty("Model").GetString()).Distinct().Order(StringComparer.Ordinal));
        Assert.All(predicting, e => Assert.InRange(e.GetProperty("ImagesDone").GetInt32(), 1, e.GetProperty("Images").GetInt32()));
        var explaining = events.Where(e => e.TryGetProperty("StepNumber", out _)).ToList();
        Assert.NotEmpty(explaining);
        Assert.Equal(("cnn", "saliency", 1, 13), (explaining[0].GetProperty("Model").GetString(), explaining[0].GetProperty("Step").GetString(),
            explaining[0].GetProperty("StepNumber").GetInt32(), explaining[0].GetProperty("Steps").GetInt32()));

        var (code, errors) = await flow.RunAsync();
        Assert.True(code == 0, errors);
        var second = flow.CacheStatuses();
        Assert.Equal(["augment", "ingest", "predict", "report", "split", "train.cnn", "train.dnn", "visualize"], second.Keys.Order(StringComparer.Ordinal));
        Assert.All(second.Values.Where(s => s != "volatile"), s => Assert.Equal("hit", s));
        Assert.Equal("volatile", second["report"]);
        Assert.DoesNotContain(flow.LatestEvents(), e => e.TryGetProperty("Epoch", out _));

        // A visualisation setting changes: only visualize is recomputed (and the report, which always is). (Two methods
        // from here on: the first run covered every method, and explaining is what costs time.)
        string[] twoMethods = ["--set", "visualize.methods=saliency,filters"];
        (code, errors) = await flow.RunAsync([.. twoMethods, "--set", "visualize.ascent_steps=4"]);
        Assert.True(code == 0, errors);
        var third = flow.CacheStatuses();
        Assert.Equal("miss", third["visualize"]);
        Assert.All(third.Where(p => p.Key is not ("visualize" or "report")), p => Assert.Equal("hit", p.Value));
        Assert.DoesNotContain(flow.LatestEvents(), e => e.TryGetProperty("Epoch", out _));

        // One member's setting changes: only that member trains again.
        (code, errors) = await flow.RunAsync([.. twoMethods, "--set", "visualize.ascent_steps=4", "--set", "train.dnn.epochs=1"]);
        Assert.True(code == 0, errors);
        var fourth = flow.CacheStatuses();
        Assert.Equal("miss", fourth["train.dnn"]);
        Assert.Equal("hit", fourth["train.cnn"]);
        Assert.Equal("miss", fourth["predict"]);
        var epochs = flow.LatestEvents().Where(e => e.TryGetProperty("Epoch", out _)).Select(e => e.GetProperty("Model").GetString()).ToList();
        Assert.Equal(["dnn"], epochs.Distinct());
    }

    /// <summary>
    /// Determinism: the same flow and seed in a fresh artifacts folder, in the same process after other runs have used
    /// torch's global generator, trains to the same numbers as the shared run (starting weights come from the member
    /// seed alone). The fresh run explains with two methods (SmoothGrad draws seeded noise) where the shared run used
    /// every method and the sanity check: a method's numbers depend neither on the other methods nor on their order.
    /// </summary>
    [Fact]
    public async Task TheSameFlowAndSeedInAFreshFolderGiveTheSameNumbers()
    {
        static string Numbers(TinyFlow flow)
        {
            using var metrics = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(flow.LatestRunDir(), "metrics.json")));
            var ensemble = metrics.RootElement.GetProperty("predict");
            var smoothGrad = metrics.RootElement.GetProperty("visualize").GetProperty("members").GetProperty("cnn").GetProperty("methods").GetProperty("smoothgrad");
            return string.Join("; ", new[] { "cnn", "dnn" }.Select(m =>
                $"{m} loss {metrics.RootElement.GetProperty("train." + m).GetProperty("best_valid_loss").GetDouble():R} " +
                $"test {ensemble.GetProperty("per_member").GetProperty(m).GetProperty("test_accuracy").GetDouble():R}")) +
                $"; ensemble {ensemble.GetProperty("valid_nll").GetDouble():R}" +
                $"; smoothgrad deletion {smoothGrad.GetProperty("deletion_auc").GetDouble():R} insertion {smoothGrad.GetProperty("insertion_auc").GetDouble():R}" +
                $" road {smoothGrad.GetProperty("road_morf").GetDouble():R}";
        }

        string shared;
        using (var sharedRun = await TinyFlow.CopyOfFinishedRunAsync()) shared = Numbers(sharedRun);
        using var flow = new TinyFlow();
        var (code, errors) = await flow.RunAsync("--set", "visualize.methods=saliency,smoothgrad", "--set", "visualize.sanity_layers=0");
        Assert.True(code == 0, errors);
        Assert.All(flow.CacheStatuses().Values, s => Assert.NotEqual("hit", s)); // computed afresh, not read from a cache
        Assert.Equal(shared, Numbers(flow));
    }

    /// <summary>Every section of the seed report's order is there, every figure is an embedded non-empty PNG, and the text carries the numbers.</summary>
    private static void AssertReport(string path)
    {
        var html = File.ReadAllText(path);
        foreach (var section in new[] { "cnn", "dnn", "confusion", "saliency", "filters", "ensemble", "leak", "facts" })
            Assert.Contains($"<section id=\"{section}\">", html);
        Assert.Contains("which map to believe", html); // the faithfulness ranking table and its sentence
        Assert.Contains("beat random maps", html);
        var images = System.Text.RegularExpressions.Regex.Matches(html, "src=\"data:image/png;base64,([^\"]+)\"");
        Assert.True(images.Count >= 8, $"only {images.Count} figures");
        foreach (System.Text.RegularExpressions.Match image in images)
        {
            var png = Convert.FromBase64String(image.Groups[1].Value);
            Assert.True(png.Length > 2000);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        }
        Assert.Matches("recognises <b>\\w+</b> best \\(recall \\d\\.\\d{3}\\)", html);
        Assert.Contains("Total params: 4,087,323", html);
        Assert.Contains("This run split leak-free", html);
    }

    [Fact]
    public async Task ChangingTheValidFractionRecomputesSplitButNotIngestAndOnlyVisualizeTrainsNothing()
    {
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        // (Visualize explains with one method, and the members train one epoch: their cost is not what this test is about.)
        var (code, errors) = await flow.RunAsync("--set", "split.valid_fraction=0.3", "--set", "visualize.methods=saliency", "--set", "epochs=1");
        Assert.True(code == 0, errors);
        var statuses = flow.CacheStatuses();
        Assert.Equal("hit", statuses["ingest"]);
        Assert.Equal("hit", statuses["augment"]);
        Assert.Equal("miss", statuses["split"]);
        Assert.Equal("miss", statuses["train.cnn"]);

        (code, errors) = await flow.RunAsync("--set", "split.valid_fraction=0.3", "--set", "visualize.methods=saliency,gradcam", "--set", "epochs=1", "--only", "visualize");
        Assert.True(code == 0, errors);
        statuses = flow.CacheStatuses();
        Assert.Equal("miss", statuses["visualize"]);
        Assert.Equal("hit", statuses["train.cnn"]);
        Assert.Equal("hit", statuses["train.dnn"]);
        Assert.False(statuses.ContainsKey("predict"));
        Assert.DoesNotContain(flow.LatestEvents(), e => e.TryGetProperty("Epoch", out _));

        var listing = new StringWriter();
        Assert.Equal(0, Fer.Flow.Cli.FlowCommand.ListStages(new Fer.Flow.Cli.FlowRequest(flow.Script, flow.Artifacts, ["split.valid_fraction=0.4"]), listing, TextWriter.Null));
        Assert.Matches(@"ingest\s+ingest\s+[0-9a-f]{16}\s+cached", listing.ToString());
        Assert.Matches(@"split\s+split\s+[0-9a-f]{16}\s+stale\s+augment", listing.ToString());
        Assert.Matches(@"train\.cnn\s+train-member\s+[0-9a-f]{16}\s+stale\s+split", listing.ToString());
    }

    [Fact]
    public async Task BadFlowInputIsExitCodeTwoWithAClearMessage()
    {
        using var flow = new TinyFlow();
        var (code, errors) = await flow.RunAsync("--from", "training");
        Assert.Equal(2, code);
        Assert.Contains("no stage 'training'", errors);
        (code, errors) = await flow.RunAsync("--set", "epochz=3");
        Assert.Equal(2, code);
        Assert.Contains("no parameter 'epochz'", errors);
        (code, errors) = await flow.RunAsync("--set", "split.valid_fraction=lots");
        Assert.Equal(2, code);
        Assert.Contains("expects a number", errors);
        Assert.False(Directory.Exists(Path.Combine(flow.Artifacts, "cache", "ingest")) && Directory.EnumerateDirectories(Path.Combine(flow.Artifacts, "cache", "ingest")).Any());
    }

    [Fact]
    public async Task ABadCsvStopsTheRunWithFileLineAndProblemAndCachesNothing()
    {
        using var flow0 = new TempDir();
        var csv = flow0["bad.csv"];
        var good = string.Join(' ', Enumerable.Repeat("7", 16));
        File.WriteAllText(csv, $"label,feature\n1,{good}\n2,{good} 300\n");
        using var flow = new TinyFlow(trainFile: csv);
        var (code, errors) = await flow.RunAsync();
        Assert.Equal(2, code);
        Assert.Contains("bad.csv:3", errors);
        var ingestCache = Path.Combine(flow.Artifacts, "cache", "ingest");
        Assert.True(!Directory.Exists(ingestCache) || !Directory.EnumerateDirectories(ingestCache).Any(d => !Path.GetFileName(d).StartsWith('.')));
    }
}

using System.Text.Json;
using Fer.Flow.Audit;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;
using Fer.Flow.Tests.EndToEnd;

namespace Fer.Flow.Tests.Audit;

public class RunDiffTests
{
    private static StageReport Report(string node, object metrics) =>
        new(node, node, "f" + node, StageOutcome.Miss, 1.5, new Dictionary<string, long>())
        {
            MetricsType = metrics.GetType().Name,
            Metrics = JsonSerializer.SerializeToElement(metrics, metrics.GetType(), RunRecord.Json),
        };

    private static RunRecord Record(string id, string epochs, string sha, double accuracy, double seconds, string lr = "0.001") => new()
    {
        RunId = id, Flow = "q", Command = "fer run q.fsx",
        Parameters = new() { ["epochs"] = epochs, ["seed"] = "7" },
        Settings = new()
        {
            ["ingest"] = new() { ["count"] = "3000" },
            ["train.cnn"] = new() { ["epochs"] = epochs, ["lr"] = lr, ["hyperparameters"] = "conv_dropout=0.3,dense_dropout=0.5" },
        },
        InputHashes = new() { ["/data/train.csv"] = sha },
        Stages =
        [
            Report("ingest", new { rows = new Dictionary<string, long> { ["train"] = 2700 }, class_names = new[] { "Angry", "Happy" } }),
            Report("train.cnn", new { epochs_run = int.Parse(epochs), best_valid_accuracy = accuracy, training_seconds = seconds,
                hyperparameters = new Dictionary<string, double> { ["conv_dropout"] = 0.3 } }),
        ],
    };

    [Fact]
    public void ChangedRowsOnlyWithNumericDifferencesAndTimingOnRequest()
    {
        var sha = new string('a', 64);
        var a = Record("A", "4", sha, 0.5, 100);
        var b = Record("B", "6", sha, 0.625, 140);
        var rows = RunDiff.Compute(a, b);
        Assert.Equal(
            [(DiffSection.Param, "epochs", "+2"), (DiffSection.Setting, "train.cnn.epochs", "+2"),
             (DiffSection.Metric, "train.cnn.epochs_run", "+2"), (DiffSection.Metric, "train.cnn.best_valid_accuracy", "+0.125")],
            rows.Select(r => (r.Section, r.Key, r.Change)));
        Assert.Equal(0.125, rows[^1].Delta);
        Assert.Equal(("0.5", "0.625"), (rows[^1].A, rows[^1].B));

        var withTiming = RunDiff.Compute(a, b, new RunDiffOptions(Timing: true));
        Assert.Contains(withTiming, r => r is { Section: DiffSection.Timing, Key: "train.cnn.training_seconds", Delta: 40 });

        var all = RunDiff.Compute(a, b, new RunDiffOptions(All: true));
        Assert.Contains(all, r => r is { Section: DiffSection.Hyper, Key: "train.cnn.conv_dropout", A: "0.3", Change: "" });
        Assert.Contains(all, r => r is { Section: DiffSection.Input, Key: "/data/train.csv", Change: "" });
        Assert.Contains(all, r => r is { Section: DiffSection.Metric, Key: "ingest.rows.train", A: "2700" });
        Assert.Contains(all, r => r is { Key: "ingest.class_names", A: "Angry, Happy" });
        Assert.DoesNotContain(all, r => r.Key == "train.cnn.hyperparameters.conv_dropout"); // listed once, as hyper
        Assert.DoesNotContain(all, r => r.Section == DiffSection.Timing);
    }

    [Fact]
    public void TextChangesAndRowsOfOneRunOnly()
    {
        var a = Record("A", "4", new string('a', 64), 0.5, 100);
        var b = Record("B", "4", new string('b', 64), 0.5, 100, lr: "0.0005") with
        {
            Parameters = new() { ["epochs"] = "4", ["seed"] = "7", ["count"] = "500" },
            Stages = [a.Stages[0]],
        };
        var rows = RunDiff.Compute(a, b).ToDictionary(r => r.Key);
        Assert.Equal(RunDiff.Added, rows["count"].Change);
        Assert.Null(rows["count"].A);
        Assert.Equal("-0.0005", rows["train.cnn.lr"].Change);
        Assert.Equal(RunDiff.ChangedText, rows["/data/train.csv"].Change);
        Assert.Equal(RunDiff.Removed, rows["train.cnn.best_valid_accuracy"].Change);
        Assert.Null(rows["train.cnn.best_valid_accuracy"].B);
    }

    [Fact]
    public void LatestTildeAndUnknownIdsResolveOrNameTheRecentRuns()
    {
        using var dir = new TempDir();
        foreach (var (id, epochs) in new[] { ("20261201-100000-aaaaaa", "4"), ("20261201-110000-bbbbbb", "6"), ("20261201-120000-cccccc", "6") })
        {
            var runDir = Path.Combine(dir.Path, "runs", id);
            Directory.CreateDirectory(runDir);
            (Record(id, epochs, new string('a', 64), 0.5, 1) with { Status = RunStatus.Finished }).Write(runDir);
        }
        var output = new StringWriter();
        Assert.Equal(0, RunsDiffCommand.Run(new RunsDiffCommand.DiffQuery(dir.Path, "latest~2", "latest", Json: true), output, TextWriter.Null));
        var json = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal("20261201-100000-aaaaaa", json.GetProperty("a").GetString());
        Assert.Equal("20261201-120000-cccccc", json.GetProperty("b").GetString());
        var first = json.GetProperty("rows")[0];
        Assert.Equal(("param", "epochs", "4", "6", 2.0), (first.GetProperty("section").GetString(), first.GetProperty("key").GetString(),
            first.GetProperty("a").GetString(), first.GetProperty("b").GetString(), first.GetProperty("delta").GetDouble()));

        output = new StringWriter();
        Assert.Equal(0, RunsDiffCommand.Run(new RunsDiffCommand.DiffQuery(dir.Path, "latest~1", "latest"), output, TextWriter.Null));
        Assert.Contains("do not differ", output.ToString());

        output = new StringWriter();
        Assert.Equal(0, RunsDiffCommand.Run(new RunsDiffCommand.DiffQuery(dir.Path, "20261201-10", "latest", Markdown: true), output, TextWriter.Null));
        var md = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("| section | key | 20261201-100000-aaaaaa | 20261201-120000-cccccc | change |", md[0]);
        Assert.Contains("| param | epochs | 4 | 6 | +2 |", md);

        var errors = new StringWriter();
        Assert.Equal(2, RunsDiffCommand.Run(new RunsDiffCommand.DiffQuery(dir.Path, "nope", "latest"), TextWriter.Null, errors));
        Assert.Contains("no run 'nope'", errors.ToString());
        Assert.Contains("20261201-120000-cccccc", errors.ToString());
        errors = new StringWriter();
        Assert.Equal(2, RunsDiffCommand.Run(new RunsDiffCommand.DiffQuery(dir.Path, "latest~3", "latest"), TextWriter.Null, errors));
        Assert.Contains("there are 3 runs", errors.ToString());
    }
}

/// <summary>Two tiny runs on a few hundred synthetic faces that differ only in the epochs parameter.</summary>
[Collection(EndToEndCollection.Name)]
public class RunDiffEndToEndTests
{
    [Fact]
    public async Task TwoRunsDifferingInEpochsDifferInThatParameterItsSettingsAndMetricsOnly()
    {
        // From the shared finished tiny run (epochs 2): B explains with one method (only visualize recomputes), then A is
        // the same with the epochs parameter at 1. (One method, since explaining every one again costs ~10 s and is not
        // what this test is about; both runs have the same visualize settings.)
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        string[] oneMethod = ["--set", "visualize.methods=saliency", "--set", "visualize.sanity_layers=0"];
        var (code, runErrors) = await flow.RunAsync(oneMethod);
        Assert.True(code == 0, runErrors);
        (code, runErrors) = await flow.RunAsync([.. oneMethod, "--set", "epochs=1"]);
        Assert.True(code == 0, runErrors);
        var artifacts = flow.Artifacts;
        using var dir = new TempDir();

        var output = new StringWriter();
        Assert.Equal(0, RunsDiffCommand.Run(new RunsDiffCommand.DiffQuery(artifacts, "latest", "latest~1", Json: true), output, TextWriter.Null));
        var rows = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("rows").EnumerateArray()
            .Select(r => (Section: r.GetProperty("section").GetString()!, Key: r.GetProperty("key").GetString()!, A: r.GetProperty("a").GetString(),
                B: r.GetProperty("b").GetString(), Change: r.GetProperty("change").GetString()!)).ToList();

        Assert.Equal([("param", "epochs", "1", "2", "+1")], rows.Where(r => r.Section == "param").Select(r => (r.Section, r.Key, r.A, r.B, r.Change)));
        Assert.Equal(["train.cnn.epochs", "train.dnn.epochs"], rows.Where(r => r.Section == "setting").Select(r => r.Key));
        Assert.All(rows, r => Assert.Contains(r.Section, new[] { "param", "setting", "metric" }));
        // Cached upstream stages (ingest, augment, split) did not change: no rows; the retrained members and what
        // follows from them did.
        Assert.All(rows.Where(r => r.Section == "metric"), r => Assert.Matches(@"^(train\.(cnn|dnn)|predict|visualize)\.", r.Key));
        Assert.Contains(("metric", "train.cnn.epochs_run", "1", "2", "+1"), rows.Select(r => (r.Section, r.Key, r.A, r.B, r.Change)));
        // The equal-weight NLL moves with any member (the combination used may be one member that did not change).
        Assert.Contains(rows, r => r.Key == "predict.equal_weight_valid_nll");
        Assert.All(rows, r => Assert.NotEqual("", r.Change));
        Assert.DoesNotContain(rows, r => r.Key.Contains("seconds")); // timing only with --timing

        // --all also lists what stayed the same, e.g. the data and its split.
        output = new StringWriter();
        Assert.Equal(0, RunsDiffCommand.Run(new RunsDiffCommand.DiffQuery(artifacts, "latest", "latest~1", All: true), output, TextWriter.Null));
        Assert.Matches(@"(?m)^metric\s+split\.train\s+\d+\s+\d+$", output.ToString());
        Assert.Matches(@"param\s+epochs\s+1\s+2\s+\+1", output.ToString());

        // fer compare: one page, every image embedded and a real PNG; both members' curves; the diff table.
        var page = dir["compare.html"];
        output = new StringWriter();
        var compareErrors = new StringWriter();
        Assert.Equal(0, CompareCommand.Run(artifacts, ["latest~1", "latest"], page, output, compareErrors));
        Assert.Equal("", compareErrors.ToString());
        var html = File.ReadAllText(page);
        var images = System.Text.RegularExpressions.Regex.Matches(html, "src=\"data:image/png;base64,([^\"]+)\"").Select(m => Convert.FromBase64String(m.Groups[1].Value)).ToList();
        Assert.All(images, png => Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]));
        var runs = Directory.GetDirectories(Path.Combine(artifacts, "runs")).OrderBy(d => Directory.GetCreationTimeUtc(d)).ThenBy(d => d).TakeLast(2);
        var figures = runs.Sum(run => Directory.GetFiles(run, "*.png", SearchOption.AllDirectories).Length);
        // Each run's figures, the two confusion matrices once more, and one validation plot per member.
        Assert.Equal(figures + 2 + 2, images.Count);
        Assert.Contains("train.cnn, one line per run", html);
        Assert.Contains("train.dnn, one line per run", html);
        // Each member's overlay has two panels, validation accuracy and validation loss, side by side; with both runs' lines.
        foreach (var member in new[] { "train.cnn", "train.dnn" })
        {
            var overlay = Convert.FromBase64String(System.Text.RegularExpressions.Regex.Match(html,
                $"src=\"data:image/png;base64,([^\"]+)\" alt=\"{member}, one line per run\"").Groups[1].Value);
            using var bitmap = SkiaSharp.SKBitmap.Decode(overlay);
            Assert.Equal((2 * Fer.Core.Plots.PlotStyle.PanelWidth, Fer.Core.Plots.PlotStyle.PanelHeight), (bitmap.Width, bitmap.Height));
            // The second run's line is orange (the palette's second colour) in both panels.
            var orange = Fer.Core.Plots.PlotStyle.Palette[1];
            bool OrangeIn(int from, int to)
            {
                for (int y = 0; y < bitmap.Height; y++)
                    for (int x = from; x < to; x++)
                    {
                        var c = bitmap.GetPixel(x, y);
                        if (Math.Abs(c.Red - orange.R) < 8 && Math.Abs(c.Green - orange.G) < 8 && Math.Abs(c.Blue - orange.B) < 8) return true;
                    }
                return false;
            }
            Assert.True(OrangeIn(0, bitmap.Width / 2) && OrangeIn(bitmap.Width / 2, bitmap.Width), $"{member}: a panel lacks the second run's line");
        }
        Assert.Contains("<code>train.cnn.epochs_run</code>", html);
        Assert.DoesNotContain("Not shown", html);
        Assert.DoesNotContain("src=\"artifacts", html);
        Assert.Equal(2, CompareCommand.Run(artifacts, ["latest", "nope"], page, TextWriter.Null, TextWriter.Null));
    }
}

using Fer.Flow.Audit;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>flows/sota.fsx: the published VGG recipe's settings plan and train (a few faces, one epoch, a narrow net), on
/// random 40x40 crops, and predict with ten crops.</summary>
public class SotaFlowTests
{
    [Fact]
    public async Task TheRecipeFlowTrainsOnCropsWithSgdNesterovAugmentationAndTwoDenseLayersAndPredictsWithTenCrops()
    {
        using var dir = new TempDir();
        var errors = new StringWriter();
        var request = new FlowRequest(Repo.Flow("sota.fsx"), dir["artifacts"],
            ["count=140", "epochs=1", "width=0.125", "dense=32"], Device: "cpu", Console: false);
        Assert.True(await FlowCommand.RunAsync(request, errors) == 0, errors.ToString());
        var run = RunCatalog.List(dir["artifacts"]).Single();
        Assert.Equal(RunStatus.Finished, run.Status);
        var settings = run.Record!.Settings["train.vgg"];
        Assert.Equal(("sgd", "true", "0.01", "0.75", "0.5"),
            (settings["optimizer"], settings["nesterov"], settings["lr"], settings["reduce_lr_factor"], settings["erase_probability"]));
        var member = run.Record.MetricsOf<Fer.Flow.Stages.MemberMetrics>().Single().Metrics;
        Assert.Equal(2, member.Hyperparameters["dense_layers"]);
        Assert.Equal(40, member.Hyperparameters["crop"]);
        Assert.Equal(1, member.EpochsRun);
        Assert.True(double.IsFinite(member.BestValidLoss));
        Assert.NotNull(run.EnsembleValidAccuracy);
        var ensemble = run.Record.MetricsOf<Fer.Flow.Stages.EnsembleMetrics>().Single().Metrics;
        Assert.Equal(Fer.Core.Ensemble.TestTimeAugmentation.TenCrop, ensemble.Tta);
        // The log says how many views each prediction averaged, and the report says how predictions were made.
        var log = File.ReadAllText(Path.Combine(run.Dir, "log.clef"));
        Assert.Contains("\"Tta\":\"TenCrop\",\"Views\":10", log);
        Assert.Contains("average ten crops of each image", File.ReadAllText(Path.Combine(run.Dir, "report.html")));
        Assert.Contains("\"tta\": \"ten_crop\"", File.ReadAllText(Path.Combine(run.Dir, "run.json")));
    }
}

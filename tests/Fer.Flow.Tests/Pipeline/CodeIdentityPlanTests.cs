using Fer.Core.Models;
using Fer.Flow.Pipeline;
using Fer.Flow.Stages;
using TorchSharp;

namespace Fer.Flow.Tests.Pipeline;

/// <summary>
/// Fingerprints carry the identity of the code that computes each node: a model whose layer changes gets new
/// fingerprints for its member and what follows (so train recomputes and an entry of the older code is never found),
/// while the stages before it keep theirs. A member whose weights do not fit the model as built now is one line.
/// </summary>
public class CodeIdentityPlanTests
{
    private static FlowPlan Plan(ModelEntry model)
    {
        var catalog = StageCatalog.Default;
        var member = new NodeSpec("train.m", catalog.Get("train-member")) { Group = "train" };
        member.Settings["model"] = model.Name;
        var flow = new FlowDefinition("identity", [
            new NodeSpec("ingest", catalog.Get("ingest")), new NodeSpec("augment", catalog.Get("augment")),
            new NodeSpec("split", catalog.Get("split")), member, new NodeSpec("predict", catalog.Get("predict")),
        ]) { Models = ModelCatalog.BuiltIn.With(model) };
        return FlowPlanner.Plan(flow, new Dictionary<string, string>(), new Fer.Flow.Cache.InputFileHasher(Path.GetTempPath()));
    }

    private static ModelEntry Narrow() => new("test-vgg", ModelFamily.Convolutional, new Dictionary<string, double>(), (c, s, h) => new FerVgg(c, s, 0.25, 0.3));
    private static ModelEntry Wide() => new("test-vgg", ModelFamily.Convolutional, new Dictionary<string, double>(), (c, s, h) => new FerVgg(c, s, 0.5, 0.3));

    [Fact]
    public void ChangingAModelsLayerChangesItsMembersFingerprintAndWhatFollowsOnly()
    {
        var before = Plan(Narrow()).Nodes.ToDictionary(n => n.Name, n => n.Fingerprint);
        var again = Plan(Narrow()).Nodes.ToDictionary(n => n.Name, n => n.Fingerprint);
        var after = Plan(Wide()).Nodes.ToDictionary(n => n.Name, n => n.Fingerprint);
        Assert.Equal(before, again);
        foreach (var node in new[] { "ingest", "augment", "split" }) Assert.Equal(before[node], after[node]);
        foreach (var node in new[] { "train.m", "predict" }) Assert.NotEqual(before[node], after[node]);
    }

    [Fact]
    public void BuiltInStagesTakeTheirIdentityFromTheirCode()
    {
        var train = StageCatalog.Default.Get("train-member");
        Assert.Equal(Fer.Core.CodeIdentity.Of(typeof(TrainMemberStage)), train.CodeIdentity);
        Assert.Contains(Fer.Core.CodeIdentity.MethodsCovered(typeof(TrainMemberStage)), m => m.StartsWith("Fer.Core.Training.Trainer::", StringComparison.Ordinal) && m.Contains(" Fit("));
        var identities = StageCatalog.Default.Names.Select(k => StageCatalog.Default.Get(k).CodeIdentity).ToList();
        Assert.Equal(identities.Count, identities.Distinct().Count());
    }

    [Fact]
    public void AMemberWhoseWeightsNoLongerFitItsModelIsOneLineNamingTheTensor()
    {
        using var dir = new TempDir();
        var weights = dir["weights.bin"];
        using (var trained = Narrow().Factory(7, 48, new Dictionary<string, double>())) trained.save(weights);
        var member = new TrainedMember("m", "test-vgg", ModelFamily.Convolutional, [], new WeightsFile(weights), new HistoryFile(dir["h.parquet"]),
            new DataFile(dir["s.txt"]), new FigureFile(dir["c.png"]), new MemberMetrics("test-vgg", ModelFamily.Convolutional, 0, 1, 1, 0, 0, 0, 0, false, 0, new Dictionary<string, double>()));
        using (var same = member.Load(ModelCatalog.BuiltIn.With(Narrow()), 7, 48, torch.CPU)) Assert.False(same.training);
        var e = Assert.Throws<FlowDefinitionException>(() => member.Load(ModelCatalog.BuiltIn.With(Wide()), 7, 48, torch.CPU));
        Assert.Equal("member m: its trained weights do not fit model test-vgg as it is built now (conv2d_1.weight is [16, 1, 3, 3] in the saved weights, " +
            "[32, 1, 3, 3] in the model); train it again (fer run FLOW --from train.m)", e.Message);
    }
}

/// <summary>Settings as fingerprints and logs show them: lists as lists, not their CLR type's name.</summary>
public class CanonicalSettingsTests
{
    [Fact]
    public void AListSettingIsCanonicalAsItsItems()
    {
        Assert.Equal("[saliency,gradcam]", SettingsSchema.Canonical(new[] { "saliency", "gradcam" }));
        Assert.Equal("text", SettingsSchema.Canonical("text"));
        var visualize = SettingsBinder.Canonical(new VisualizeSettings { Methods = "saliency, gradcam" });
        Assert.Equal("[saliency,gradcam]", visualize["method_list"]);
    }
}

using Fer.Flow.Pipeline;
using Fer.Flow.Scripting;

namespace Fer.Flow.Tests.Scripting;

public class FlowScriptHostTests
{
    private static readonly Dictionary<string, string> None = [];

    [Fact]
    public void QuickstartDeclaresItsStagesMembersAndParameters()
    {
        var flow = FlowScriptHost.Load(Repo.Flow("quickstart.fsx"), new Dictionary<string, string> { ["epochs"] = "9" });
        Assert.Equal("quickstart", flow.Name);
        Assert.Equal(["ingest", "augment", "split", "train.cnn", "train.dnn", "predict", "visualize", "report"], flow.Nodes.Select(s => s.Name));
        Assert.Equal(["count", "epochs", "seed"], flow.Parameters.Keys);
        Assert.Equal(9, flow.Parameters["epochs"]);
        var members = flow.Nodes.Where(n => n.Group == "train").ToList();
        Assert.All(members, m => Assert.Equal("train-member", m.Stage.Kind));
        Assert.Equal("seed-cnn", members[0].Settings["model"]);
        Assert.Equal(9, members[0].Settings["epochs"]);
    }

    [Fact]
    public void Hw3DeclaresTheParametersUsersSet()
    {
        var flow = FlowScriptHost.Load(Repo.Flow("hw3.fsx"), new Dictionary<string, string> { ["cnn_members"] = "2" });
        foreach (var p in new[] { "train", "test", "epochs", "seed" }) Assert.Contains(p, flow.Parameters.Keys);
        Assert.Equal(["train.cnn1", "train.cnn2", "train.dnn"], flow.Nodes.Where(n => n.Group == "train").Select(m => m.Name));
    }

    [Fact]
    public void AnUnknownParameterIsAnErrorListingTheDeclaredOnes()
    {
        var e = Assert.Throws<FlowDefinitionException>(() =>
            FlowScriptHost.Load(Repo.Flow("quickstart.fsx"), new Dictionary<string, string> { ["epoch"] = "3" }));
        Assert.Contains("no parameter 'epoch'", e.Message);
        Assert.Contains("count, epochs, seed", e.Message);
    }

    [Fact]
    public void AValueOfTheWrongTypeIsAnError()
    {
        var e = Assert.Throws<FlowDefinitionException>(() =>
            FlowScriptHost.Load(Repo.Flow("quickstart.fsx"), new Dictionary<string, string> { ["epochs"] = "many" }));
        Assert.Contains("--set epochs=many", e.Message);
        Assert.Contains("an integer", e.Message);
    }

    [Fact]
    public void AnFSharpErrorReachesTheUserWithLineAndColumn()
    {
        using var dir = new TempDir();
        var script = dir["broken.fsx"];
        File.WriteAllText(script, $"#load @\"{Repo.Flow("Fer.fsx")}\"\nopen Fer\n\nlet x = undefinedThing + 1\n");
        var e = Assert.Throws<FlowDefinitionException>(() => FlowScriptHost.Load(script, None));
        Assert.Contains("broken.fsx(4,9): error FS0039", e.Message);
        Assert.Contains("undefinedThing", e.Message);
    }

    [Fact]
    public void AScriptThatDefinesNoFlowIsAnError()
    {
        using var dir = new TempDir();
        var script = dir["empty.fsx"];
        File.WriteAllText(script, "let x = 1\n");
        Assert.Contains("never called", Assert.Throws<FlowDefinitionException>(() => FlowScriptHost.Load(script, None)).Message);
    }

    [Fact]
    public void AScriptThatDefinesTwoFlowsIsAnError()
    {
        using var dir = new TempDir();
        var script = dir["two.fsx"];
        File.WriteAllText(script, $"#load @\"{Repo.Flow("Fer.fsx")}\"\nopen Fer\nflow \"one\" [ ingest [] ]\nflow \"two\" [ ingest [] ]\n");
        Assert.Contains("defines 2 flows (one, two)", Assert.Throws<FlowDefinitionException>(() => FlowScriptHost.Load(script, None)).Message);
    }

    [Fact]
    public void CustomDefinesItsOwnStageAndModelInFSharp()
    {
        var flow = FlowScriptHost.Load(Repo.Flow("custom.fsx"), None);
        Assert.Contains(flow.Nodes, n => n.Name == "equalize" && n.Stage.SourceHash == flow.ScriptHash);
        Assert.Equal(["train.cnn", "train.fsharp"], flow.Nodes.Where(n => n.Group == "train").Select(n => n.Name));
        var entry = flow.Models.Get("fsharp-cnn");
        Assert.Equal(Fer.Core.Models.ModelFamily.Convolutional, entry.Family);
        Assert.Equal(flow.ScriptHash, entry.SourceHash);
        using var model = flow.Models.Create("fsharp-cnn", 7, 48);
        using var x = TorchSharp.torch.rand(2, 1, 48, 48);
        using var logits = model.forward(x);
        Assert.Equal([2L, 7L], logits.shape);
        Assert.Contains("conv2d_2", model.Layers.Select(l => l.Name));
    }

    [Fact]
    public void TheScriptHashCoversTheFilesItLoads()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["lib.fsx"], "let answer = 42\n");
        File.WriteAllText(dir["main.fsx"], "#load \"lib.fsx\"\nlet x = Lib.answer\n");
        var before = FlowScriptHost.ScriptHash(dir["main.fsx"]);
        Assert.Equal(before, FlowScriptHost.ScriptHash(dir["main.fsx"]));
        File.WriteAllText(dir["lib.fsx"], "let answer = 43\n");
        Assert.NotEqual(before, FlowScriptHost.ScriptHash(dir["main.fsx"]));
    }
}

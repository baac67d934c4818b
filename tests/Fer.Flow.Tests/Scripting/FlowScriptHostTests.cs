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
        Assert.Equal(["ingest", "augment", "split", "train", "predict", "visualize", "report"], flow.Stages.Select(s => s.Name));
        Assert.Equal(["count", "epochs", "seed"], flow.Parameters.Keys);
        Assert.Equal(9, flow.Parameters["epochs"]);
        var train = flow.Stages.Single(s => s.Name == "train");
        Assert.Equal(["cnn", "dnn"], train.Members.Select(m => m.Name));
        Assert.Equal("seed-cnn", train.Members[0].Model);
        Assert.Equal(9, train.Members[0].Settings["epochs"]);
    }

    [Fact]
    public void Hw3DeclaresTheParametersUsersSet()
    {
        var flow = FlowScriptHost.Load(Repo.Flow("hw3.fsx"), new Dictionary<string, string> { ["cnn_members"] = "2" });
        foreach (var p in new[] { "train", "test", "epochs", "seed" }) Assert.Contains(p, flow.Parameters.Keys);
        Assert.Equal(["cnn1", "cnn2", "dnn"], flow.Stages.Single(s => s.Name == "train").Members.Select(m => m.Name));
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
}

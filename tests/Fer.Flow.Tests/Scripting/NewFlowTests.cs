using Fer.Flow.Cli;

namespace Fer.Flow.Tests.Scripting;

public class NewFlowTests
{
    [Fact]
    public void AStarterFlowOutsideTheRepositoryFindsTheShippedVocabularyAndPlans()
    {
        using var dir = new TempDir();
        var script = dir["elsewhere/myflow.fsx"];
        var output = new StringWriter();
        Assert.Equal(0, NewCommand.Run(script, output, TextWriter.Null));
        Assert.False(File.Exists(dir["elsewhere/Fer.fsx"])); // nothing copied beside it: fer finds its own
        Assert.Contains("#load \"Fer.fsx\"", File.ReadAllText(script));

        var listing = new StringWriter();
        var errors = new StringWriter();
        Assert.True(FlowCommand.ListStages(new FlowRequest(script, dir["artifacts"], ["count=100", "epochs=1"]), listing, errors) == 0, errors.ToString());
        foreach (var stage in new[] { "ingest", "augment", "split", "train.cnn", "train.dnn", "predict", "visualize", "report" })
            Assert.Matches($@"(?m)^{System.Text.RegularExpressions.Regex.Escape(stage)}\s", listing.ToString());

        errors = new StringWriter();
        Assert.Equal(2, NewCommand.Run(script, TextWriter.Null, errors));
        Assert.Contains("already exists", errors.ToString());
        Assert.Equal(2, NewCommand.Run(dir["flow.txt"], TextWriter.Null, TextWriter.Null));
    }
}

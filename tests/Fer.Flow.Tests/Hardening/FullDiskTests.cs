using Fer.Flow.Cli;
using Fer.Flow.Tests.EndToEnd;

namespace Fer.Flow.Tests.Hardening;

/// <summary>A run whose artifacts folder fills up: one line, the run recorded as failed, nothing committed to the cache.</summary>
[Collection(EndToEndCollection.Name)]
public class FullDiskTests
{
    [SkippableFact]
    public async Task ARunOnAFullDiskFailsWithOneLineAndCommitsNothing()
    {
        using var disk = new SmallTmpfs(400); // the lock, the run folder and its log fit; the ingested faces (645 kB) do not
        using var flow = new TinyFlow();
        var errors = new StringWriter();
        var code = await Shell.WithinSeconds(120, FlowCommand.RunAsync(new FlowRequest(flow.Script, disk.Path, [], Device: "cpu", Console: false), errors));
        Assert.Equal(ExitCodes.Failed, code);
        Assert.Contains("No space left on device", errors.ToString());
        Assert.Single(errors.ToString().TrimEnd().Split('\n'));
        var ingest = Path.Combine(disk.Path, "cache", "ingest");
        Assert.False(Directory.Exists(ingest) && Directory.EnumerateDirectories(ingest).Any(), "something was left in the ingest cache: "
            + string.Join(", ", disk.Leftovers()));
    }
}

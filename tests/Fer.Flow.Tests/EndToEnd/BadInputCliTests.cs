namespace Fer.Flow.Tests.EndToEnd;

/// <summary>The bad-input corpus through the whole command: exit code 2, one message with file and line, no cache entry.</summary>
[Collection(EndToEndCollection.Name)]
public class BadInputCliTests
{
    public static TheoryData<string, int, string> Corpus()
    {
        var data = new TheoryData<string, int, string>();
        foreach (var line in File.ReadAllLines(Path.Combine(Repo.Root, "tests", "data", "bad", "expected.tsv")).Where(l => l.Length > 0 && !l.StartsWith('#')))
        {
            var c = line.Split('\t');
            data.Add(c[0], int.Parse(c[1]), c[2]);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task EachBadFileStopsTheRunWithExitCodeTwoAndCachesNothing(string file, int line, string problem)
    {
        var path = Path.Combine(Repo.Root, "tests", "data", "bad", file);
        using var flow = new TinyFlow(trainFile: path);
        var (code, errors) = await flow.RunAsync();
        Assert.Equal(2, code);
        Assert.Contains(line > 0 ? $"{path}:{line}: " : $"{path}: ", errors);
        Assert.Contains(problem, errors);
        Assert.Single(errors.Trim().Split('\n'));
        var ingest = Path.Combine(flow.Artifacts, "cache", "ingest");
        Assert.False(Directory.Exists(ingest) && Directory.EnumerateDirectories(ingest).Any(d => !Path.GetFileName(d).StartsWith('.')));
        Assert.Contains(flow.LatestEvents(), e => e.TryGetProperty("@l", out var l) && l.GetString() == "Error" && e.GetProperty("Stage").GetString() == "ingest");
    }

    [Fact]
    public async Task SkipModeSkipsTheBadRowsAndLogsEach()
    {
        var path = Path.Combine(Repo.Root, "tests", "data", "bad", "pixel_256.csv");
        using var flow = new TinyFlow(trainFile: path, extraStages: "");
        var (code, errors) = await flow.RunAsync("--set", "ingest.on_error=skip", "--only", "ingest");
        Assert.True(code == 0, errors);
        var events = flow.LatestEvents();
        Assert.Contains(events, e => e.TryGetProperty("Line", out var l) && l.GetInt64() == 3 && e.GetProperty("Problem").GetString()!.Contains("256"));
        Assert.Contains(events, e => e.TryGetProperty("SkippedRows", out var n) && n.GetInt32() == 1);
    }
}
